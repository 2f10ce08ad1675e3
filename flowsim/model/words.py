"""Counts in words for summaries and messages: "1 VPC", "2 VPCs", "1,000 records"."""
from __future__ import annotations


def counted(n: int, noun: str, nouns: str | None = None, grouped: bool = True) -> str:
    """`n` and the noun, singular for exactly one (plural `nouns`, or noun + "s"); thousands separators unless
    not `grouped` (quota messages quote the bare number a limit is compared with)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}" if grouped else \
        f"{n} {noun if n == 1 else (nouns or noun + 's')}"
