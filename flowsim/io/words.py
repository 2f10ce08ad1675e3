"""Counts in words for summaries: "1 VPC", "2 VPCs", "1,000 records"."""
from __future__ import annotations


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """`n` and the noun, singular for exactly one (plural `nouns`, or noun + "s"), with thousands separators."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"
