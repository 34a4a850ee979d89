"""Loading Params from the command line and the environment, driven by the option table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pwsup.config import numbers as n
from pwsup.config import options as k
from pwsup.config.loader import load, split_argv
from pwsup.config.params import Params, option_specs

SPECS = dict(option_specs())
NEEDS_NO_COMMAND = {"command_line"}


def sample(name: str, spec: k.Spec, tmp: Path) -> tuple[str, object]:
    """A valid text for an option and the value it must parse to."""
    kind = spec.kind
    if name == "work_dir":
        return str(tmp), str(tmp)
    if isinstance(kind, k.Boolean):
        flipped = not bool(spec.default)
        return ("TRUE" if flipped else "FALSE"), flipped
    if isinstance(kind, n.Integer):
        value = max(kind.minimum or 0, 3) if kind.maximum is None else kind.minimum or 1
        return str(value), value
    if isinstance(kind, n.Seconds):
        return "2.5", 2.5
    if isinstance(kind, n.Probability):
        return "0.5", 0.5
    if isinstance(kind, n.Size):
        return "1.5G", 3 << 29
    if isinstance(kind, k.Choice):
        return kind.choices[-1].lower(), kind.choices[-1]
    if isinstance(kind, k.JsonObject):
        return '{"k": [1, 2]}', {"k": [1, 2]}
    if isinstance(kind, k.Locations):
        return "PLAIN:a,PLAIN:b", ("PLAIN:a", "PLAIN:b")
    if isinstance(kind, k.Token):
        return " sample-token\n", "sample-token"
    if isinstance(kind, k.Url):
        return "http://127.0.0.1:9/", ("http://127.0.0.1:9" if kind.strip_slash
                                       else "http://127.0.0.1:9/")
    if isinstance(kind, k.ExecutionUuid):
        return "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    if isinstance(kind, k.EnvName):
        return "SAMPLE_NAME", "SAMPLE_NAME"
    return "sample text", "sample text"


def base_argv(name: str) -> list[str]:
    online = ["-k", "key", "-n", "task"] if name == "prevent_offline_execution" else []
    return [*online, *([] if name in NEEDS_NO_COMMAND else ["--", "true"])]


ENV_OPTIONS = [(n, s) for n, s in option_specs() if s.env]
CLI_VALUE_OPTIONS = [(n, s) for n, s in option_specs() if s.flags and s.cli in ("value", "append")]
CLI_FLAG_OPTIONS = [(n, s) for n, s in option_specs() if s.cli in ("set_true", "set_false")]


@pytest.mark.parametrize(("name", "spec"), ENV_OPTIONS, ids=[n for n, _ in ENV_OPTIONS])
def test_every_option_reads_every_env_spelling(name: str, spec: k.Spec, tmp_path: Path) -> None:
    """Each option is read, typed, from each of its PROC_WRAPPER_*/PWSUP_* names."""
    text, expected = sample(name, spec, tmp_path)
    for env_name in spec.env_names():
        loaded = load(base_argv(name), {env_name: text})
        assert loaded.errors == [], env_name
        assert loaded.params is not None
        assert getattr(loaded.params, name) == expected, env_name


@pytest.mark.parametrize(("name", "spec"), CLI_VALUE_OPTIONS, ids=[n for n, _ in CLI_VALUE_OPTIONS])
def test_every_valued_option_parses_from_the_command_line(
    name: str, spec: k.Spec, tmp_path: Path
) -> None:
    """Each valued flag (and each of its spellings) gives the same typed value as its env."""
    text, expected = sample(name, spec, tmp_path)
    if isinstance(spec.kind, k.Locations):
        text, expected = "PLAIN:a", ("PLAIN:a",)
    for flag in spec.flags:
        loaded = load([flag, text, *base_argv(name)], {})
        assert loaded.errors == [], flag
        assert loaded.params is not None
        assert getattr(loaded.params, name) == expected, flag


@pytest.mark.parametrize(("name", "spec"), CLI_FLAG_OPTIONS, ids=[n for n, _ in CLI_FLAG_OPTIONS])
def test_every_switch_sets_its_value(name: str, spec: k.Spec) -> None:
    """--flag switches set True, --no-... switches set False."""
    loaded = load([*spec.flags[:1], *base_argv(name)], {})
    assert loaded.errors == []
    assert loaded.params is not None
    assert getattr(loaded.params, name) is (spec.cli == "set_true")


def test_environment_beats_the_command_line() -> None:
    """As documented: PROC_WRAPPER_* overrides the same option given on the command line."""
    loaded = load(["-t", "5", "--", "true"], {"PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "7"})
    assert loaded.params is not None
    assert loaded.params.process_timeout == 7.0


def test_readme_spellings_are_aliases() -> None:
    """Names from upstream's README that its code never read are accepted."""
    loaded = load(["--", "true"], {"PROC_WRAPPER_PROCESS_MAX_RETRIES": "4",
                                   "PROC_WRAPPER_PROCESS_GROUP_TERMINATION": "false",
                                   "PROC_WRAPPER_STATUS_UPDATE_PORT": "2400"})
    assert loaded.params is not None
    assert loaded.params.process_max_retries == 4
    assert loaded.params.process_group_termination is False
    assert loaded.params.status_update_socket_port == 2400


def test_two_spellings_with_different_values_are_a_contradiction() -> None:
    """Setting one option twice, differently, is reported rather than resolved by guesswork."""
    loaded = load(["--", "true"], {"PROC_WRAPPER_TASK_MAX_RETRIES": "1",
                                   "PROC_WRAPPER_PROCESS_MAX_RETRIES": "2"})
    assert loaded.params is None
    assert any("PROC_WRAPPER_TASK_MAX_RETRIES and PROC_WRAPPER_PROCESS_MAX_RETRIES" in e
               for e in loaded.errors)


def test_same_value_under_two_spellings_is_fine() -> None:
    """Equal values under two names are not a contradiction."""
    loaded = load(["--", "true"], {"PROC_WRAPPER_TASK_MAX_RETRIES": "2",
                                   "PWSUP_TASK_MAX_RETRIES": "2"})
    assert loaded.params is not None


def test_every_error_is_reported_at_once() -> None:
    """Bad values, unknown options and a missing command are all listed together."""
    loaded = load(["-t", "abc", "-r", "xyz", "--bogus"],
                  {"PROC_WRAPPER_TASK_IS_SERVICE": "perhaps"})
    assert loaded.params is None
    text = "\n".join(loaded.errors)
    for fragment in ("--process-timeout", "--process-max-retries", "'--bogus'",
                     "PROC_WRAPPER_TASK_IS_SERVICE", "no command given"):
        assert fragment in text


@pytest.mark.parametrize(("argv", "environ", "fragment"), [
    (["-o", "-p", "--", "true"], {}, "contradict"),
    (["-p", "--", "true"], {}, "needs an API key"),
    (["-p", "-k", "key", "--", "true"], {}, "Task name or UUID"),
    (["-p", "-k", "key", "-n", "t", "-m", "0.5", "--", "true"], {}, "probability"),
    (["-p", "-k", "key", "-n", "t", "-a", "--", "true"], {}, "Run Environment"),
    (["-c", "echo", "--", "true"], {}, "both as arguments"),
    (["-w", "/nonexistent/dir", "--", "true"], {}, "not a directory"),
    (["-c", "echo 'unbalanced", "--shell-mode", "disable"], {}, "cannot split"),
])
def test_contradictions_are_configuration_errors(
    argv: list[str], environ: dict[str, str], fragment: str
) -> None:
    """Contradictory settings stop the run before anything starts."""
    loaded = load(argv, environ)
    assert loaded.params is None
    assert any(fragment in e for e in loaded.errors), loaded.errors


def test_missing_task_without_prevent_offline_is_a_warning() -> None:
    """Without -p, a reporting problem only warns: the run goes on unreported."""
    loaded = load(["-k", "key", "--", "true"], {})
    assert loaded.params is not None
    assert any("unreported" in w for w in loaded.warnings)


def test_service_timeout_is_ignored_with_a_warning() -> None:
    """Services have no time limit."""
    loaded = load(["-s", "-t", "5", "--", "true"], {})
    assert loaded.params is not None
    assert loaded.params.attempt_timeout is None
    assert any("ignored for a service" in w for w in loaded.warnings)


def test_documented_defaults() -> None:
    """Defaults are the documented ones (not proc_wrapper 6.0.2's accidental ones)."""
    p = load(["--", "true"], {}).params
    assert p is not None
    assert (p.api_heartbeat_interval, p.api_task_execution_creation_error_timeout) == (300, 300)
    assert (p.api_task_execution_creation_conflict_timeout,
            p.api_task_execution_creation_conflict_retry_delay) == (0, 120)
    assert p.max_conflicting_age is None
    assert p.process_retry_delay == 60
    assert p.max_concurrency == 1
    assert p.process_termination_grace_period == 30
    assert p.online is False


def test_concurrency_limited_service_defaults() -> None:
    """A service with a concurrency limit gets the service-specific defaults."""
    p = load(["-s", "--", "true"], {}).params
    assert p is not None
    assert p.api_heartbeat_interval == 30
    assert p.api_task_execution_creation_conflict_timeout == 1800
    assert p.api_task_execution_creation_conflict_retry_delay == 60
    assert p.max_conflicting_age == 90
    unlimited = load(["-s", "--max-concurrency", "-1", "--", "true"], {}).params
    assert unlimited is not None
    assert unlimited.api_heartbeat_interval == 300


def test_heartbeat_zero_or_negative_disables_heartbeats() -> None:
    """-1 and 0 both mean no heartbeats."""
    for text in ("0", "-1"):
        p = load(["--api-heartbeat-interval", text, "--", "true"], {}).params
        assert p is not None
        assert p.api_heartbeat_interval is None


def test_log_level_accepts_trace_and_any_case() -> None:
    """TRACE (listed by upstream's README) means DEBUG; case does not matter."""
    p = load(["--", "true"], {"PROC_WRAPPER_LOG_LEVEL": "trace"}).params
    assert p is not None
    assert p.log_level == "DEBUG"


def test_empty_environment_values_are_unset() -> None:
    """An empty variable does not override anything."""
    p = load(["-n", "job", "--", "true"], {"PROC_WRAPPER_TASK_NAME": ""}).params
    assert p is not None
    assert p.task_name == "job"


@pytest.mark.parametrize(("argv", "command"), [
    (["--", "echo", "--x=1"], ["echo", "--x=1"]),
    (["echo", "--version"], ["echo", "--version"]),
    (["-t", "3", "echo", "-t", "9"], ["echo", "-t", "9"]),
    (["-t", "3", "--", "--weird-name"], ["--weird-name"]),
])
def test_command_is_everything_after_the_options(argv: list[str], command: list[str]) -> None:
    """The command starts at `--` or the first non-option and is kept verbatim."""
    loaded = load(argv, {})
    assert loaded.errors == []
    assert loaded.argv == command


def test_fast_path_needs_no_option_parser() -> None:
    """argv without options is split without argparse."""
    assert split_argv(["--", "a", "-b"]) == ([], ["a", "-b"])
    assert split_argv(["a", "-b"]) == ([], ["a", "-b"])
    assert split_argv(["-o", "a"]) is None


def test_params_are_read_only_and_hide_secrets_in_repr() -> None:
    """Params cannot change after loading, and their repr never shows the API key."""
    p = load(["-k", "topsecretkey", "-n", "t", "--", "true"], {}).params
    assert p is not None
    with pytest.raises(AttributeError):
        p.task_name = "other"  # type: ignore[misc]
    assert "topsecretkey" not in repr(p)
    assert p.replace(task_name="x").task_name == "x"
    assert p == p.replace()
    with pytest.raises(TypeError, match="unknown options"):
        Params(nope=1)


def test_every_option_has_help_and_a_group() -> None:
    """The table drives --help: every option documents itself."""
    for name, spec in option_specs():
        assert spec.help.strip(), name
        assert spec.group, name
        assert spec.flags or spec.env or name == "command", name
