"""Argument checks shared by the layers: each error names the argument."""

from __future__ import annotations


def positive_int(name: str, value) -> int:
    """Returns `value` as an int, or raises ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def units_list(name: str, value) -> tuple[int, ...]:
    """A sequence of positive ints (layer widths); an empty sequence is allowed."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"`{name}` must be a list of positive integers, got {value!r}") from None
    for i, v in enumerate(items):
        positive_int(f"{name}[{i}]", v)
    return tuple(int(v) for v in items)


def fraction(name: str, value, *, upper_open: bool = True) -> float:
    """A float in [0, 1) (or [0, 1] with upper_open=False)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}") from None
    if v < 0 or v > 1 or (upper_open and v == 1):
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"`{name}` must be in {bound}, got {value!r}")
    return v


def non_negative(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a non-negative number, got {value!r}") from None
    if not v >= 0:
        raise ValueError(f"`{name}` must be non-negative, got {value!r}")
    return v


def positive(name: str, value) -> float:
    v = non_negative(name, value)
    if v == 0:
        raise ValueError(f"`{name}` must be positive, got {value!r}")
    return v


def one_of(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"`{name}` must be one of {sorted(options)}, got {value!r}")
    return value
