"""Merge strategies: proc_wrapper's DEEP and SHALLOW, mergedeep's others."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pwsup.secrets.errors import MergeError
from pwsup.secrets.merge import merge


def test_deep_merges_dicts_recursively() -> None:
    assert merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3, "z": 4}, "c": 5}) == {
        "a": {"x": 1, "y": 3, "z": 4}, "b": 1, "c": 5}


def test_deep_merges_lists_element_wise() -> None:
    destination = {"l": [{"a": 1, "b": 2}, 2, 3]}
    assert merge(destination, {"l": [{"b": 9}, 20]}) == {"l": [{"a": 1, "b": 9}, 20, 3]}
    assert merge({"l": [1]}, {"l": [5, 6, 7]}) == {"l": [5, 6, 7]}


def test_deep_type_mismatch_takes_the_source() -> None:
    assert merge({"a": {"x": 1}}, {"a": [1]}) == {"a": [1]}
    assert merge({"a": [1]}, {"a": None}) == {"a": None}


def test_shallow_replaces_top_level_keys() -> None:
    assert merge({"a": {"x": 1}, "b": 1}, {"a": {"y": 2}}, "SHALLOW") == {
        "a": {"y": 2}, "b": 1}


def test_mergedeep_strategies() -> None:
    assert merge({"a": {"x": [1]}}, {"a": {"x": [2]}}, "REPLACE") == {"a": {"x": [2]}}
    assert merge({"a": {"x": [1]}}, {"a": {"x": [2]}}, "ADDITIVE") == {"a": {"x": [1, 2]}}
    assert merge({"a": [1]}, {"a": [2]}, "typesafe_additive") == {"a": [1, 2]}
    assert merge({"a": 1}, {"a": 2}, "TYPESAFE_REPLACE") == {"a": 2}


@pytest.mark.parametrize("strategy", ["TYPESAFE_REPLACE", "TYPESAFE_ADDITIVE", "TYPESAFE"])
def test_typesafe_strategies_refuse_mismatches(strategy: str) -> None:
    with pytest.raises(MergeError) as caught:
        merge({"a": "hunter2"}, {"a": 5}, strategy)
    assert "hunter2" not in str(caught.value)


def test_unknown_strategy() -> None:
    with pytest.raises(MergeError):
        merge({}, {}, "SIDEWAYS")


_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12)
_DICTS = st.dictionaries(st.text(max_size=3), _VALUES, max_size=4)


def _deep(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return merge(copy.deepcopy(a), copy.deepcopy(b), "DEEP")


@settings(max_examples=100, deadline=None)
@given(_DICTS, _DICTS)
def test_deep_merge_properties(a: dict[str, Any], b: dict[str, Any]) -> None:
    result = _deep(a, b)
    assert set(result) == set(a) | set(b)
    for key, value in a.items():
        if key not in b:
            assert result[key] == value
    for key, value in b.items():
        both_dicts = isinstance(value, dict) and isinstance(a.get(key), dict)
        both_lists = isinstance(value, list) and isinstance(a.get(key), list)
        if not (both_dicts or both_lists):
            assert result[key] == value  # the source wins everything it does not merge
        if both_lists:
            assert len(result[key]) == max(len(value), len(a[key]))


@settings(max_examples=100, deadline=None)
@given(_DICTS, _DICTS)
def test_deep_merge_identities(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert _deep(a, {}) == a
    assert _deep({}, b) == b
    assert _deep(a, a) == a
    assert _deep(_deep(a, b), b) == _deep(a, b)
    source = copy.deepcopy(b)
    merge(copy.deepcopy(a), source)
    assert source == b  # the source is never changed
