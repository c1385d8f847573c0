"""Postgres WAL positions (LSNs, written `16/B374D848`) as integers, and as fixed-width text that Redis
compares in the same order."""

from __future__ import annotations


def lsn_value(text: str) -> int:
    """`16/B374D848` -> 0x16B374D848."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_key(value: int) -> str:
    """Sixteen hex digits: two positions compare as text the way they compare as numbers."""
    return f"{value:016x}"
