"""flowsim: is this traffic allowed by our Alibaba Cloud security groups, and why?"""
from __future__ import annotations

__version__ = "0.1.0"
