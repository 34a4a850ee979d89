"""Resolution rules: top-level fetching, passes, failures, overwrite, cross-links, TTL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from pwsup.config.params import Params
from pwsup.secrets import Resolution, Resolver
from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers.base import Fetched

SUFFIX = "_FOR_PROC_WRAPPER_TO_RESOLVE"
SECRET = "hunter2-correct-horse"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class FakeSecrets:
    """Stands in for AWS Secrets Manager: fixed documents, counted fetches."""

    cacheable = True

    def __init__(self, **documents: str) -> None:
        self.documents = dict(documents)
        self.fetches: list[str] = []

    def fetch(self, address: str) -> Fetched:
        self.fetches.append(address)
        if address not in self.documents:
            raise FetchError("GetSecretValue failed: ResourceNotFoundException")
        return Fetched(self.documents[address])


def resolve(environ: dict[str, str], *, secrets: FakeSecrets | None = None,
            initial_config: dict[str, Any] | None = None, **options: Any) -> Resolution:
    providers = {"AWS_SM": secrets} if secrets is not None else None
    with Resolver(Params(**options), environ, initial_config=initial_config,
                  providers=providers) as resolver:
        return resolver.resolve()


def plain_env(resolution: Resolution) -> dict[str, str]:
    """The environment without the TASK_CONFIG cross-link."""
    return {k: v for k, v in resolution.env.items() if k != "TASK_CONFIG"}


# -- top-level fetching ---------------------------------------------------------------------
def test_env_locations_merge_in_order_and_process_env_wins(tmp_path: Path) -> None:
    first = tmp_path / "first.env"
    first.write_text("A=1\nB=1\nC=1\n")
    second = tmp_path / "second.json"
    second.write_text('{"B": 2, "C": [1, 2], "D": true}')
    result = resolve({"C": "process"}, env_locations=(str(first), f"FILE:{second}"))
    assert result.ok
    assert plain_env(result) == {"A": "1", "B": "2", "C": "process", "D": "TRUE"}


def test_env_location_defaults_to_dotenv_and_config_to_json() -> None:
    result = resolve({}, env_locations=("PLAIN:X=1",), config_locations=('PLAIN:{"a": 1}',))
    assert result.env["X"] == "1"
    assert result.config["a"] == 1


def test_config_locations_merge_over_initial_config() -> None:
    result = resolve({}, initial_config={"a": {"x": 1}, "keep": True},
                     config_locations=('PLAIN:{"a": {"y": 2}}', "PLAIN:a:\n  z: 3\n!yaml"))
    assert result.config["a"] == {"x": 1, "y": 2, "z": 3}
    assert result.config["keep"] is True


def test_shallow_strategy_for_top_level() -> None:
    result = resolve({}, config_merge_strategy="SHALLOW", initial_config={"a": {"x": 1}},
                     config_locations=('PLAIN:{"a": {"y": 2}}',))
    assert result.config["a"] == {"y": 2}


def test_blank_top_level_locations_are_skipped() -> None:
    result = resolve({}, env_locations=("", "  "), config_locations=("PLAIN:{}",))
    assert result.ok
    assert result.config == {"ENV": {}}


def test_top_level_failures_fail_fast_with_an_empty_result(tmp_path: Path) -> None:
    result = resolve({"A": "1"}, env_locations=(str(tmp_path / "missing.env"),))
    assert not result.ok
    assert result.env == {}
    assert result.config == {}
    (failure,) = result.failures
    assert failure.name == "env location 1"
    assert failure.provider == "FILE"
    assert "No such file" in failure.reason


def test_top_level_must_be_a_dictionary() -> None:
    result = resolve({}, config_locations=("PLAIN:[1, 2]",))
    assert [f.reason for f in result.failures] == ["the data is not a dictionary"]


def test_top_level_failure_without_fail_fast_skips_the_location() -> None:
    result = resolve({}, fail_fast_config_resolution=False,
                     env_locations=("PLAIN:A=1", f"PLAIN:{SECRET}!json", "PLAIN:B=2"))
    assert plain_env(result) == {"A": "1", "B": "2"}
    assert [f.name for f in result.failures] == ["env location 2"]
    assert SECRET not in str(result.failures)


# -- resolution -------------------------------------------------------------------------------
def test_resolvable_variables_lose_their_suffix() -> None:
    secrets = FakeSecrets(db=json.dumps({"user": "app", "password": SECRET}))
    result = resolve({
        "USER" + SUFFIX: "AWS_SM:db|JP:$.user",
        "PASSWORD" + SUFFIX: "AWS_SM:db!json|JP:$.password",
        "DB" + SUFFIX: "AWS_SM:db!json",
        "OTHER": "x",
    }, secrets=secrets)
    assert result.ok
    assert plain_env(result) == {"OTHER": "x", "USER": "app", "PASSWORD": SECRET,
                                 "DB": json.dumps({"user": "app", "password": SECRET})}
    assert secrets.fetches == ["db"]
    assert result.fetches == 1
    assert SECRET in result.secret_values
    assert "x" not in result.secret_values  # plain process variables are not secrets


def test_hundred_variables_from_one_secret_fetch_it_once() -> None:
    secrets = FakeSecrets(big=json.dumps({f"k{i}": f"value-{i}" for i in range(100)}))
    environ = {f"V{i}{SUFFIX}": f"AWS_SM:big|JP:$.k{i}" for i in range(100)}
    result = resolve(environ, secrets=secrets)
    assert result.ok
    assert all(result.env[f"V{i}"] == f"value-{i}" for i in range(100))
    assert secrets.fetches == ["big"]


def test_unresolved_is_a_failure_never_the_location_string() -> None:
    for fail_fast in (True, False):
        result = resolve({"M" + SUFFIX: "ENV:NOPE", "N" + SUFFIX: "PLAIN:{}|JP:$.x", "K": "v"},
                         fail_fast_config_resolution=fail_fast)
        assert not result.ok
        assert "M" not in result.env
        assert "N" not in result.env
        assert all(SUFFIX not in name for name in result.env)
        assert all("ENV:NOPE" not in value for value in result.env.values())
    assert {f.name for f in result.failures} == {"M", "N"}
    assert result.env["K"] == "v"


def test_fail_fast_stops_and_returns_nothing() -> None:
    secrets = FakeSecrets()
    result = resolve({"A" + SUFFIX: "PLAIN:a", "B" + SUFFIX: "AWS_SM:missing",
                      "ZZZ" + SUFFIX: "PLAIN:z"}, secrets=secrets)
    assert not result.ok
    assert result.env == {}
    assert result.config == {}
    assert [(f.name, f.provider) for f in result.failures] == [("B", "AWS_SM")]
    assert "ResourceNotFoundException" in result.failures[0].reason


def test_without_fail_fast_failed_names_are_left_out() -> None:
    result = resolve({"A" + SUFFIX: "PLAIN:a", "B" + SUFFIX: f"PLAIN:{SECRET}|BAD:x",
                      "C" + SUFFIX: SECRET, "ZZZ" + SUFFIX: "PLAIN:z"},
                     fail_fast_config_resolution=False)
    assert plain_env(result) == {"A": "a", "ZZZ": "z"}
    assert sorted(f.name for f in result.failures) == ["B", "C"]
    assert all(SECRET not in str(f) for f in result.failures)


@pytest.mark.parametrize("plain_first", [True, False])
def test_existing_value_wins_without_overwrite_in_any_order(plain_first: bool) -> None:
    items = [("FOO", "orig"), ("FOO" + SUFFIX, "PLAIN:new")]
    environ = dict(items if plain_first else reversed(items))
    secrets = FakeSecrets()
    assert plain_env(resolve(environ, secrets=secrets)) == {"FOO": "orig"}
    assert plain_env(resolve(environ, overwrite_env_during_resolution=True)) == {"FOO": "new"}


def test_existing_value_from_an_env_file_also_wins() -> None:
    result = resolve({"FOO" + SUFFIX: "PLAIN:new"}, env_locations=("PLAIN:FOO=file",))
    assert plain_env(result) == {"FOO": "file"}


def test_passes_resolve_references_to_later_variables() -> None:
    environ = {"A" + SUFFIX: "ENV:B", "B" + SUFFIX: "PLAIN:b-value"}
    assert plain_env(resolve(environ)) == {"A": "b-value", "B": "b-value"}
    one_pass = resolve(environ, max_config_resolution_iterations=1)
    assert [f.name for f in one_pass.failures] == ["A"]


def test_resolved_locations_are_not_resolved_again() -> None:
    assert resolve({"A" + SUFFIX: "PLAIN:PLAIN:x"}).env["A"] == "PLAIN:x"


def test_resolution_off() -> None:
    environ = {"A" + SUFFIX: "PLAIN:x"}
    for options in ({"resolve_secrets": False}, {"max_config_resolution_iterations": 0},
                    {"max_config_resolution_depth": 0}):
        result = resolve(environ, **options)
        assert result.ok
        assert plain_env(result) == environ


def test_custom_prefix_and_suffix() -> None:
    result = resolve({"SECRET_A": "PLAIN:x", "A_FOR_PROC_WRAPPER_TO_RESOLVE": "PLAIN:y"},
                     resolved_env_var_name_prefix="SECRET_", resolved_env_var_name_suffix="")
    assert plain_env(result) == {"A": "x", "A_FOR_PROC_WRAPPER_TO_RESOLVE": "PLAIN:y"}


def test_empty_prefix_and_suffix_resolve_nothing() -> None:
    result = resolve({"A": "PLAIN:x"}, resolved_env_var_name_suffix="")
    assert plain_env(result) == {"A": "PLAIN:x"}


def test_legacy_name_providers_only_with_the_flag() -> None:
    environ = {"ENV_GREETING" + SUFFIX: "J|JP:$.hi", "J": '{"hi": "hello"}'}
    legacy = resolve(environ, legacy_name_providers=True)
    assert legacy.env["GREETING"] == "hello"
    modern = resolve(environ, fail_fast_config_resolution=False)
    assert "GREETING" not in modern.env
    assert "ENV_GREETING" not in modern.env
    assert [f.name for f in modern.failures] == ["ENV_GREETING"]


def test_config_provider_into_env() -> None:
    result = resolve({"DB" + SUFFIX: "CONFIG:$.db", "U" + SUFFIX: "CONFIG:$.db.user",
                      "P" + SUFFIX: "CONFIG:$.db|JP:$.port"},
                     initial_config={"db": {"user": "app", "port": 5432}})
    assert result.env["DB"] == '{"user": "app", "port": 5432}'
    assert result.env["U"] == "app"
    assert result.env["P"] == "5432"


def test_nested_config_resolution_keeps_no_location_keys() -> None:
    secrets = FakeSecrets(db=json.dumps({"username": "app", "password": SECRET}))
    result = resolve({}, secrets=secrets, initial_config={
        "db": {"username__to_resolve": "AWS_SM:db|JP:$.username",
               "password__to_resolve": "AWS_SM:db|JP:$.password", "host": "h"},
        "list": [{"x__to_resolve": "PLAIN:1!json"}],
        "whole__to_resolve": "AWS_SM:db",
        "parsed__to_resolve": "AWS_SM:db!json",
    })
    assert result.ok, result.failures
    config = {k: v for k, v in result.config.items() if k != "ENV"}
    assert config == {"db": {"username": "app", "password": SECRET, "host": "h"},
                      "list": [{"x": 1}], "whole": secrets.documents["db"],
                      "parsed": {"username": "app", "password": SECRET}}
    assert "__to_resolve" not in json.dumps(result.config)
    assert secrets.fetches == ["db"]


def test_resolved_dict_merges_into_existing_and_resolves_inside() -> None:
    inner = json.dumps({"user": "u", "password__to_resolve": "PLAIN:pw"})
    initial = {"db": {"host": "h", "user": "old"}, "db__to_resolve": f"PLAIN:{inner}!json"}
    deep = resolve({}, initial_config=initial)
    assert deep.config["db"] == {"host": "h", "user": "u", "password": "pw"}
    shallow = resolve({}, initial_config=initial, config_merge_strategy="SHALLOW")
    assert shallow.config["db"] == {"user": "u", "password": "pw"}


def test_depth_limit_leaves_deeper_keys_alone() -> None:
    initial = {"a__to_resolve": "PLAIN:x", "b": {"c__to_resolve": "PLAIN:y"}}
    result = resolve({}, initial_config=initial, max_config_resolution_depth=1)
    assert result.ok
    assert result.config["a"] == "x"
    assert result.config["b"] == {"c__to_resolve": "PLAIN:y"}


def test_cross_links() -> None:
    result = resolve({"A": "1"}, initial_config={"k": [1]})
    assert json.loads(result.env["TASK_CONFIG"]) == {"k": [1]}
    assert result.config["ENV"] == {"A": "1"}
    empty = resolve({})
    assert empty.env["TASK_CONFIG"] == "{}"
    custom = resolve({"A": "1"}, env_var_name_for_config="CFG", config_property_name_for_env="E")
    assert "TASK_CONFIG" not in custom.env
    assert custom.env["CFG"] == "{}"
    assert custom.config == {"E": {"A": "1"}}
    off = resolve({"A": "1"}, env_var_name_for_config=None, config_property_name_for_env=None)
    assert off.env == {"A": "1"}
    assert off.config == {}


def test_projection_of_resolved_values() -> None:
    result = resolve({
        "B" + SUFFIX: "PLAIN:true!json", "N" + SUFFIX: "PLAIN:null!yaml",
        "L" + SUFFIX: "PLAIN:[1,2]!json", "F" + SUFFIX: "PLAIN:1.5!json",
        "T" + SUFFIX: "PLAIN:line\n",
    })
    assert plain_env(result) == {"B": "TRUE", "N": "null", "L": "[1, 2]", "F": "1.5",
                                 "T": "line\n"}


def test_values_an_environment_cannot_hold_are_failures() -> None:
    result = resolve({"A" + SUFFIX: 'PLAIN:"a\\u0000b"!json'}, fail_fast_config_resolution=False)
    assert "A" not in result.env
    assert [f.reason for f in result.failures] == ["the value contains a NUL character"]


def test_secret_values_include_fetched_documents_and_json_escapes() -> None:
    result = resolve({"Q" + SUFFIX: 'PLAIN:{"q": "say \\"hi\\""}|JP:$.q'},
                     env_locations=("PLAIN:TOKEN=tok-123",))
    assert {"tok-123", 'say "hi"', 'say \\"hi\\"'} <= result.secret_values


def test_no_secret_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    secrets = FakeSecrets(db=json.dumps({"password": SECRET}))
    caplog.set_level(logging.DEBUG, logger="pwsup.secrets")
    result = resolve({"P" + SUFFIX: "AWS_SM:db|JP:$.password", "Q" + SUFFIX: f"PLAIN:{SECRET}",
                      "R" + SUFFIX: f"{SECRET}"}, secrets=secrets,
                     fail_fast_config_resolution=False)
    assert result.env["P"] == SECRET
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert SECRET not in repr(result)
    assert SECRET not in str(result.failures)


def test_log_secrets_shows_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pwsup.secrets")
    resolve({"Q" + SUFFIX: f"PLAIN:{SECRET}"}, log_secrets=True)
    assert any(SECRET in record.getMessage() for record in caplog.records)


# -- TTL ------------------------------------------------------------------------------------
def test_second_resolve_refetches_only_stale_entries() -> None:
    clock = Clock()
    secrets = FakeSecrets(a="a1", b="b1")
    params = Params(config_ttl=60.0)
    with Resolver(params, {"A" + SUFFIX: "AWS_SM:a"}, clock=clock,
                  providers={"AWS_SM": secrets}) as resolver:
        assert resolver.resolve().env["A"] == "a1"
        clock.now += 30
        resolver.environ["B" + SUFFIX] = "AWS_SM:b"
        second = resolver.resolve()
        assert (second.env["A"], second.env["B"], second.fetches) == ("a1", "b1", 1)
        secrets.documents.update(a="a2", b="b2")
        clock.now += 31  # a is 61 s old (stale), b 31 s (fresh)
        third = resolver.resolve()
        assert (third.env["A"], third.env["B"], third.fetches) == ("a2", "b1", 1)
    assert secrets.fetches == ["a", "b", "a"]


def test_without_ttl_nothing_is_refetched() -> None:
    clock = Clock()
    secrets = FakeSecrets(a="a1")
    with Resolver(Params(), {"A" + SUFFIX: "AWS_SM:a"}, clock=clock,
                  providers={"AWS_SM": secrets}) as resolver:
        resolver.resolve()
        clock.now += 1e6
        assert resolver.resolve().fetches == 0
    assert secrets.fetches == ["a"]


def test_resolve_is_repeatable_from_the_original_inputs() -> None:
    with Resolver(Params(), {"A" + SUFFIX: "PLAIN:x"}, initial_config={"c__to_resolve": "PLAIN:y"}
                  ) as resolver:
        first = resolver.resolve()
        second = resolver.resolve()
    assert first.env == second.env
    assert first.config == second.config == {"c": "y", "ENV": {"A": "x"}}
