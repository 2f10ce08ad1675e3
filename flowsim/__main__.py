"""`python -m flowsim` runs the command line."""
from .cli import run

run()
