"""A tiny calculator."""


def add(left: int, right: int) -> int:
    """Return the sum of two numbers."""
    return left + right
