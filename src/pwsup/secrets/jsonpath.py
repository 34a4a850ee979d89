"""Extracting part of a value with a JSONPath expression (`|JP:` and the CONFIG provider).

A JSONPath query yields a list of matches; proc_wrapper turned it into one value, and
existing locations rely on those rules:

- no match: the value is *unresolved* (`UnresolvedError`), not an empty list;
- one match: that element, unless the expression ends with `[*]`, which asks for a list;
- several matches: the list of them.

jsonpath-ng is imported on first use (it builds a parser when imported), and parsed
expressions are memoised: resolving 100 variables from one secret evaluates the same
few expressions over and over.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pwsup.secrets.errors import FormatError, UnresolvedError


def query(data: Any, expression: str) -> Any:
    """The value `expression` selects in `data`, by the rules above."""
    matches = [match.value for match in _compiled(expression).find(data)]
    if not matches:
        raise UnresolvedError("the JSONPath expression matched nothing")
    if len(matches) == 1 and not forces_list(expression):
        return matches[0]
    return matches


def forces_list(expression: str) -> bool:
    """A trailing `[*]` keeps a single match as a one-element list."""
    return expression.rstrip().endswith("[*]")


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    from jsonpath_ng.parser import parse

    try:
        return parse(expression)
    except Exception:  # jsonpath-ng raises several unrelated types for bad syntax
        raise FormatError("invalid JSONPath expression") from None
