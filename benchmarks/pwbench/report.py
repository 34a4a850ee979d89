"""Summaries (median, min-max, N) and markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def spread(values: Sequence[float], digits: int = 2) -> str:
    """`median (min-max)` (with an en dash), or an em dash when there is nothing."""
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base


def codes(values: Iterable[str]) -> str:
    """Distinct exit codes / outcomes, most frequent first, with counts when they differ."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{value} ×{count}" for value, count in ordered) or "—"


def target(label: str, met: bool | None, actual: str) -> str:
    if met is None:
        return f"{label}: not measured"
    return f"{label}: {'met' if met else 'MISSED'} ({actual})"


def at_most(limit: float, value: float | None, unit: str, digits: int) -> str:
    """The target cell for 'value ≤ limit' (used for pwsup's row only)."""
    return target(f"≤ {limit:g} {unit}", None if value is None else value <= limit,
                  f"{value or 0:.{digits}f} {unit}")


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths,
                                                                           strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


@dataclass
class Section:
    """One benchmark's output: a title, what was measured, a table, and notes."""

    title: str
    intro: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        parts = [f"## {self.title}", "", self.intro, "", markdown(self.headers, self.rows)]
        if self.notes:
            parts += ["", *(f"- {note}" for note in self.notes)]
        parts += ["", f"_({self.seconds:.1f} s)_", ""]
        return "\n".join(parts)
