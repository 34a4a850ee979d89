"""JSONPath rules kept from proc_wrapper."""

from __future__ import annotations

import pytest

from pwsup.secrets import jsonpath
from pwsup.secrets.errors import FormatError, UnresolvedError

DATA = {"a": {"b": [[1], [2, 3]]}, "user": "app", "items": [{"n": 1}, {"n": 2}]}


def test_one_match_is_the_value() -> None:
    assert jsonpath.query(DATA, "$.user") == "app"
    assert jsonpath.query(DATA, "$.a.b[0]") == [1]
    assert jsonpath.query(DATA, "$.a") == {"b": [[1], [2, 3]]}


def test_several_matches_are_a_list() -> None:
    assert jsonpath.query(DATA, "$.items[*].n") == [1, 2]


def test_trailing_star_forces_a_list() -> None:
    assert jsonpath.query(DATA, "$.a.b[0][*]") == [1]
    assert jsonpath.forces_list("$.x[*] ")
    assert not jsonpath.forces_list("$.x[0]")


def test_no_match_is_unresolved() -> None:
    with pytest.raises(UnresolvedError):
        jsonpath.query(DATA, "$.missing")
    with pytest.raises(UnresolvedError):
        jsonpath.query("not a dict", "$.a")


def test_invalid_expression() -> None:
    with pytest.raises(FormatError, match="invalid JSONPath"):
        jsonpath.query(DATA, "$[")
