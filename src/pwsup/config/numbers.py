"""The numeric value kinds: whole numbers, durations, sizes and probabilities.

Every number pwsup accepts is a finite number in ASCII digits within its option's bounds,
or a `ValueError` that says what was expected: `float()` and `int()` alone would take NaN,
infinities, other scripts' digits and `1_000`, and overflow the C types the values end up
in (tests/hostile/test_numbers.py tries the whole class).
"""

from __future__ import annotations

import math

from pwsup.config.options import Kind

MAX_INTEGER = 2**31 - 1
"""The largest whole number an option takes unless it says otherwise: the C `int` the
values end up in (poll timeouts, sizes, counts); more is a typo, not a wish."""
MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""The longest duration an option takes (10 years): beyond it, timeouts overflow the
platform's (threading's and sockets' are about 292 years, poll's 24 days — waits longer
than that are cut into pieces), and no job means it."""
NO_LIMIT = -1
"""The one negative value options with a "no limit" meaning accept (proc_wrapper's)."""


def _number(text: str, *, integer: bool) -> float:
    """A finite number written in ASCII digits. `float()` alone would also take NaN,
    "infinity", digits of other scripts and `1_000`, and `int()` of a huge text raises
    something other than ValueError."""
    stripped = text.strip()
    what = "a whole number" if integer else "a number"
    if not stripped.isascii() or "_" in stripped:
        raise ValueError(f"expected {what}, got {text!r}")
    try:
        value = float(int(stripped)) if integer else float(stripped)
    except (ValueError, OverflowError):
        raise ValueError(f"expected {what}, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {_shown(text)}")
    return value


def _shown(text: str) -> str:
    """The value as an error message quotes it: at most 40 characters of it."""
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


class Integer(Kind):
    """A whole number. With `unlimited`, -1 means "no limit" (None); other negative
    numbers are errors, not another way to say it."""

    def __init__(self, minimum: int | None = None, maximum: int = MAX_INTEGER,
                 unlimited: bool = False) -> None:
        self.minimum, self.maximum, self.unlimited = minimum, maximum, unlimited

    def metavar(self) -> str:
        return "N"

    def parse(self, text: str) -> object:
        value = _number(text, integer=True)
        if self.unlimited and value == NO_LIMIT:
            return None
        if self.minimum is not None and value < self.minimum:
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be at least {self.minimum}{suffix}, got {_shown(text.strip())}")
        if value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}, got {_shown(text.strip())}")
        return int(value)

    def doc(self) -> str:
        return "integer" + ("; -1 = no limit" if self.unlimited else "")


class Seconds(Kind):
    """A duration in seconds (fractions allowed), at most MAX_SECONDS. With `unlimited`,
    -1 means "no limit" (None)."""

    def __init__(self, unlimited: bool = False, positive: bool = False,
                 minimum: float = 0.0) -> None:
        self.unlimited, self.positive, self.minimum = unlimited, positive, minimum

    def metavar(self) -> str:
        return "SECONDS"

    def parse(self, text: str) -> object:
        value = _number(text, integer=False)
        if self.unlimited and value == NO_LIMIT:
            return None
        if value < 0 or (self.positive and value == 0):
            bound = "greater than 0" if self.positive else "0 or more"
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be {bound}{suffix}, got {_shown(text.strip())}")
        if value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}, got {_shown(text.strip())}")
        if value > MAX_SECONDS:
            raise ValueError(f"must be at most {MAX_SECONDS:.0f} (10 years), "
                             f"got {_shown(text.strip())}")
        return value

    def doc(self) -> str:
        return "seconds" + ("; -1 = no limit" if self.unlimited else "")


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class Size(Kind):
    """A number of bytes: digits, optionally with a fraction and a binary suffix (`K`, `M`,
    `G`, `T`, with or without `i`/`iB`/`B`, any case: `512M`, `1.5GiB`, `2g`), each 1024
    times the one before; rounded down to whole bytes, between `minimum` and `maximum`.
    With `unlimited`, -1 means "no limit" (None)."""

    def __init__(self, minimum: int, maximum: int, unlimited: bool = False) -> None:
        self.minimum, self.maximum, self.unlimited = minimum, maximum, unlimited

    def metavar(self) -> str:
        return "SIZE"

    def parse(self, text: str) -> object:
        stripped = text.strip()
        if self.unlimited and stripped == str(NO_LIMIT):
            return None
        lowered = stripped.lower()
        number = lowered.rstrip("kmgtib")
        unit = lowered[len(number):]
        unit = unit[:-1] if unit.endswith("b") else unit
        unit = unit[:-1] if unit.endswith("i") and len(unit) == 2 else unit
        parts = number.split(".")
        if (unit not in _SIZE_UNITS or len(parts) > 2 or not number.isascii()
                or not all(part.isdigit() for part in parts) or len(number) > 30):
            raise ValueError(f"expected a size such as 512M, 2G or a number of bytes, "
                             f"got {_shown(text)}")
        value = int(float(number) * _SIZE_UNITS[unit])
        if value < self.minimum:
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be at least {_bytes(self.minimum)}{suffix}, "
                             f"got {_shown(stripped)}")
        if value > self.maximum:
            raise ValueError(f"must be at most {_bytes(self.maximum)}, got {_shown(stripped)}")
        return value

    def doc(self) -> str:
        return "bytes, or with K/M/G/T (powers of 1024)" + ("; -1 = no limit"
                                                             if self.unlimited else "")


def _bytes(value: int) -> str:
    """A bound as the user would write it: `1M`, `1T`, or bytes."""
    for suffix, unit in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


class Probability(Kind):
    def metavar(self) -> str:
        return "P"

    def parse(self, text: str) -> object:
        value = _number(text, integer=False)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"must be between 0 and 1, got {text.strip()}")
        return value

    def doc(self) -> str:
        return "0.0 to 1.0"
