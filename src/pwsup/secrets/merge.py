"""Merging fetched dictionaries (`--config-merge-strategy`).

- DEEP (default, proc_wrapper's own): dict into dict recursively; list into list element by
  element (so dictionaries inside lists merge too), extra source elements appended; any
  other combination, including a type mismatch, takes the source value.
- SHALLOW: top-level keys of the source replace those of the destination.
- REPLACE, ADDITIVE, TYPESAFE_REPLACE, TYPESAFE_ADDITIVE (and TYPESAFE, mergedeep's alias):
  `mergedeep.merge` with that strategy. ADDITIVE concatenates lists; the TYPESAFE ones
  refuse to merge values of different types (`MergeError`).

Merging mutates and returns the destination, like mergedeep. Callers hand in copies of
anything they must keep (the cache does).
"""

from __future__ import annotations

from typing import Any

from pwsup.secrets.errors import MergeError

DEEP = "DEEP"
SHALLOW = "SHALLOW"
MERGEDEEP_STRATEGIES = ("REPLACE", "ADDITIVE", "TYPESAFE_REPLACE", "TYPESAFE_ADDITIVE",
                        "TYPESAFE")
STRATEGIES = (DEEP, SHALLOW, *MERGEDEEP_STRATEGIES)


def merge(destination: dict[str, Any], source: dict[str, Any],
          strategy: str = DEEP) -> dict[str, Any]:
    """Merge `source` into `destination` (mutated and returned)."""
    strategy = strategy.upper()
    if strategy == DEEP:
        for key, value in source.items():
            destination[key] = merge_values(destination.get(key, _MISSING), value)
        return destination
    if strategy == SHALLOW:
        destination.update(source)
        return destination
    if strategy in MERGEDEEP_STRATEGIES:
        return _mergedeep(destination, source, strategy)
    raise MergeError(f"unknown merge strategy {strategy!r}")


def merge_values(destination: Any, source: Any) -> Any:
    """DEEP merge of two values; the result may share structure with both."""
    if isinstance(destination, dict) and isinstance(source, dict):
        return merge(destination, source, DEEP)
    if isinstance(destination, list) and isinstance(source, list):
        for index, item in enumerate(source):
            if index < len(destination):
                destination[index] = merge_values(destination[index], item)
            else:
                destination.append(item)
        return destination
    return source


def _mergedeep(destination: dict[str, Any], source: dict[str, Any],
               strategy: str) -> dict[str, Any]:
    import mergedeep

    try:
        result: dict[str, Any] = mergedeep.merge(
            destination, source, strategy=mergedeep.Strategy[strategy])
    except TypeError:
        # mergedeep's message names the key and the types only; ours says less still.
        raise MergeError(f"the {strategy} merge strategy refused values of different "
                         "types under the same key") from None
    return result


class _Missing:
    """Marks an absent destination key (None is a legitimate value)."""


_MISSING = _Missing()
