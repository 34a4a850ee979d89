"""Every number pwsup accepts is checked: a bad one is a usage error naming the option.

The class of input: any text given for a numeric option — on the command line, in a
`PROC_WRAPPER_*` variable — including NaN,
infinities, negative numbers other than the documented -1 ("no limit"), values beyond what
the platform's timeouts and C integers hold, huge digit strings, and digits of other
scripts. The outcome is always one of two: a value within the option's documented bounds,
or exit 78 with one line per problem that names the option. Never a traceback, never an
OverflowError, never a run with a silently odd setting.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.runner import pwsup_cmd, run
from pwsup.config.loader import load
from pwsup.config.numbers import MAX_INTEGER, MAX_SECONDS, Integer, Probability, Seconds, Size
from pwsup.config.params import option_specs

pytestmark = pytest.mark.hostile

NUMERIC = [(name, spec) for name, spec in option_specs()
           if isinstance(spec.kind, (Integer, Seconds, Probability, Size))]
BAD_EVERYWHERE = ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "9" * 400, "9" * 5000,
                  "0x10", "", "  ", "１２", "٣", "1_000", "--5", "5s", "true"]
"""Not a finite number in ASCII digits, for any numeric option."""


def _bad_for(spec_kind: object) -> list[str]:
    """Values out of range for this kind (on top of BAD_EVERYWHERE)."""
    bad = ["-2", "-1e12"]
    if isinstance(spec_kind, Seconds):
        bad += ["1e12", str(MAX_SECONDS * 2), "-1.5"]
    if isinstance(spec_kind, Integer):
        bad += [str(MAX_INTEGER + 1), "1e12", "2.5", "18446744073709551616"]
        if not spec_kind.unlimited:
            bad.append("-1")
    if isinstance(spec_kind, Probability):
        bad += ["1.5", "-0.1"]
    if isinstance(spec_kind, Size):
        bad += ["1K", "0", "0.5M", "2P", "2000T", "1e9", "1.5.2G", "1 G", "GiB", "1Gi B"]
    if isinstance(spec_kind, Seconds) and spec_kind.minimum:
        bad += ["0.001"]
    return bad


def _flag(spec: object) -> str | None:
    flags = [f for f in getattr(spec, "flags", ()) if f.startswith("--")]
    return flags[0] if flags else None


@pytest.mark.parametrize(("name", "spec"), NUMERIC, ids=[name for name, _ in NUMERIC])
def test_every_bad_value_is_an_error_naming_the_option(name: str, spec: object) -> None:
    """In-process, every member of the class, through the environment and the command
    line: an error that names the option, and no Params."""
    env_name = spec.env_names()[0] if spec.env else None  # type: ignore[attr-defined]
    flag = _flag(spec)
    for value in BAD_EVERYWHERE + _bad_for(spec.kind):  # type: ignore[attr-defined]
        if env_name is not None:
            loaded = load(["--", "true"], {env_name: value})
            if value.strip():  # blank in the environment means "not set" (proc_wrapper's rule)
                assert loaded.params is None, (env_name, value)
                assert any(error.startswith(env_name) for error in loaded.errors), loaded.errors
        if flag is not None and spec.cli == "value":  # type: ignore[attr-defined]
            loaded = load([f"{flag}={value}", "--", "true"], {})
            assert loaded.params is None, (flag, value)
            assert any(error.startswith(flag) for error in loaded.errors), loaded.errors


@pytest.mark.parametrize(("name", "spec"), NUMERIC, ids=[name for name, _ in NUMERIC])
@settings(max_examples=60, deadline=None)
@given(text=st.one_of(st.text(max_size=30), st.floats().map(repr), st.integers().map(str)))
def test_any_text_parses_within_bounds_or_is_a_value_error(name: str, spec: object,
                                                            text: str) -> None:
    kind = spec.kind  # type: ignore[attr-defined]
    try:
        value = kind.parse(text)
    except ValueError as e:
        message = str(e)
    else:
        _check_in_bounds(kind, text, value)
        return
    assert message
    assert "\n" not in message
    assert len(message) < 200  # a huge input is not echoed whole


def _check_in_bounds(kind: object, text: str, value: object) -> None:
    if value is None:  # "no limit": only -1 says so
        assert getattr(kind, "unlimited", False)
        assert float(text) == -1
        return
    assert isinstance(value, (int, float))
    assert math.isfinite(value)
    if isinstance(kind, Seconds):
        assert max(0, kind.minimum) <= value <= MAX_SECONDS
    elif isinstance(kind, Size):
        assert isinstance(value, int)
        assert kind.minimum <= value <= kind.maximum
    elif isinstance(kind, Integer):
        assert isinstance(value, int)
        assert value <= kind.maximum
        assert kind.minimum is None or value >= kind.minimum
    else:
        assert 0.0 <= value <= 1.0


def test_minus_one_keeps_its_meaning_no_limit() -> None:
    loaded = load(["-t", "-1", "-r", "-1", "--", "true"], {})
    assert loaded.params is not None, loaded.errors
    assert loaded.params.process_timeout is None
    assert loaded.params.process_max_retries is None


@pytest.mark.parametrize("argv", [
    ["-t", "1e12"], ["-t", "-2"], ["-t", "nan"], ["-r", "1e12"], ["-r", "-2"],
    ["--process-termination-grace-period", "inf"], ["--status-update-socket-port", "70000"],
    ["--api-heartbeat-interval", "9" * 5000], ["--max-log-line-length", "0x10"],
])
def test_the_command_line_gives_exit_78_and_one_line_per_problem(argv: list[str],
                                                                  env: dict[str, str]) -> None:
    """The real program: exit 78, the option named, no traceback, nothing started."""
    result = run(pwsup_cmd(["sh", "-c", "echo started"], *argv), env)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    assert "Traceback" not in result.stderr
    errors = [line for line in result.log_lines if "configuration error" in line]
    assert len(errors) == 1, result
    assert argv[0] in errors[0], result
    assert all(len(line) < 300 for line in result.stderr.splitlines()), result
