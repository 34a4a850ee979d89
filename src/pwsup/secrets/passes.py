"""Resolution passes: replacing `NAME<suffix>: location` entries by `NAME: value`.

A pass walks a dictionary (the environment or the configuration): nested dictionaries
and lists too, down to `max_depth` levels (the top level is level 0, so a depth of 0
resolves nothing). Each resolvable key, one whose name has the configured prefix and
suffix and whose value is a string, is evaluated:

- resolved: the resolvable key is removed and the value stored under the target name
  (for nested configuration too: proc_wrapper kept the `x__to_resolve` key next to `x`);
  a dictionary resolved onto an existing dictionary is merged into it (not for SHALLOW);
- unresolved (an ENV variable not set yet, a JSONPath without a match): the key stays
  for the next pass, where an earlier resolution may have provided the data; if it is
  still unresolved when the passes end, it is a failure;
- broken (bad location, fetch or parse error): a failure; the key is removed and nothing
  is set under the target name.

Existing values: with `keep_existing`, a target name that already held a plain value
before resolution keeps it, and the location is not even fetched. The decision depends
only on what existed, never on the order of the keys (proc_wrapper's depended on the
order and was inverted for the common case). Which keys resolution itself produced is
tracked per dictionary, so a later pass never mistakes a resolved value for a plain one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pwsup.secrets.accounting import Accounting
from pwsup.secrets.errors import SecretsError, UnresolvedError
from pwsup.secrets.locations import legacy_provider_of, parse_location
from pwsup.secrets.merge import SHALLOW, merge
from pwsup.secrets.values import ValueSource

logger = logging.getLogger("pwsup.secrets")

STILL_UNRESOLVED = "still unresolved when the resolution passes ended"


@dataclass(frozen=True)
class Naming:
    """How resolvable keys are named: `prefix + target + suffix`."""

    prefix: str
    suffix: str

    def target(self, key: object) -> str | None:
        """The target name of a resolvable key, else None. With both prefix and suffix
        empty nothing is resolvable (every key would be, and every value a location)."""
        if not isinstance(key, str) or not (self.prefix or self.suffix):
            return None
        if len(key) <= len(self.prefix) + len(self.suffix):
            return None
        if key.startswith(self.prefix) and key.endswith(self.suffix):
            return key[len(self.prefix):len(key) - len(self.suffix)]
        return None


@dataclass(frozen=True)
class PassSettings:
    naming: Naming
    max_depth: int
    keep_existing: bool
    """True for the environment without --overwrite-env-during-resolution."""
    strategy: str
    legacy_names: bool = False
    log_values: bool = False


class Walker:
    """Runs the passes over one dictionary; one walker per dictionary and resolution."""

    def __init__(self, settings: PassSettings, source: ValueSource,
                 accounting: Accounting) -> None:
        self._settings = settings
        self._source = source
        self._accounting = accounting
        # id(dict) -> (the dict, keys resolution stored in it). Holding the dict keeps its
        # id from being reused by another dictionary while the walker lives.
        self._produced: dict[int, tuple[dict[Any, Any], set[str]]] = {}
        self._unresolved: dict[tuple[int, str], tuple[str | None, str]] = {}

    def run_pass(self, root: dict[str, Any]) -> bool:
        """One pass; True if anything changed (another pass may then achieve more)."""
        return self._walk(root, 0, "")

    def finish(self, root: dict[str, Any]) -> None:
        """Report the resolvable keys left after the last pass, and remove them."""
        self._sweep(root, 0, "")

    # -- walking ------------------------------------------------------------------------
    def _walk(self, node: Any, depth: int, path: str) -> bool:
        if depth >= self._settings.max_depth:
            return False
        changed = False
        if isinstance(node, dict):
            for key in list(node):
                if key not in node:
                    continue
                value = node[key]
                target = self._settings.naming.target(key) if isinstance(value, str) else None
                if target is None:
                    changed |= self._walk(value, depth + 1, _join(path, key))
                else:
                    changed |= self._resolve_key(node, key, target, value, path)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                changed |= self._walk(item, depth + 1, f"{path}[{index}]")
        return changed

    def _sweep(self, node: Any, depth: int, path: str) -> None:
        if depth >= self._settings.max_depth:
            return
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                target = self._settings.naming.target(key) if isinstance(value, str) else None
                if target is None:
                    self._sweep(value, depth + 1, _join(path, key))
                    continue
                provider, reason = self._unresolved.get((id(node), key), (None, STILL_UNRESOLVED))
                del node[key]
                self._accounting.fail(_join(path, self._legacy(target)[1]), provider, reason)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self._sweep(item, depth + 1, f"{path}[{index}]")

    # -- one key --------------------------------------------------------------------------
    def _resolve_key(self, node: dict[Any, Any], key: str, target: str, text: str,
                     path: str) -> bool:
        forced, target = self._legacy(target)
        name = _join(path, target)
        if self._settings.keep_existing and target in node and not self._was_produced(node, target):
            logger.debug("%s: keeping the existing value (no overwrite)", name)
            del node[key]
            return True
        provider = forced
        try:
            location = parse_location(text, provider=forced)
            provider = location.provider
            value = self._source.evaluate(location)
        except UnresolvedError as error:
            self._unresolved[(id(node), key)] = (provider, str(error))
            return False
        except SecretsError as error:
            del node[key]
            self._accounting.fail(name, provider, str(error))
            return True
        del node[key]
        self._unresolved.pop((id(node), key), None)
        self._accounting.add_secret(value)
        self._store(node, target, value, name, provider)
        if self._settings.log_values:
            logger.debug("%s resolved from %s: %r", name, provider, value)
        else:
            logger.debug("%s resolved from %s", name, provider)
        return True

    def _store(self, node: dict[Any, Any], target: str, value: Any, name: str,
               provider: str | None) -> None:
        existing = node.get(target)
        if (isinstance(existing, dict) and isinstance(value, dict)
                and self._settings.strategy.upper() != SHALLOW):
            try:
                value = merge(existing, value, self._settings.strategy)
            except SecretsError as error:
                self._accounting.fail(name, provider, str(error))
                return
        node[target] = value
        self._produced.setdefault(id(node), (node, set()))[1].add(target)

    def _was_produced(self, node: dict[Any, Any], target: str) -> bool:
        entry = self._produced.get(id(node))
        return entry is not None and target in entry[1]

    def _legacy(self, target: str) -> tuple[str | None, str]:
        """(forced provider, target) under the legacy provider-in-the-name form."""
        if self._settings.legacy_names:
            found = legacy_provider_of(target)
            if found is not None:
                return found
        return None, target


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
