"""Every non-numeric option value pwsup cannot use is a usage error naming the option.

The class of input: text given for an option that holds JSON, a URL or a variable name —
on the command line or in a `PROC_WRAPPER_*` variable — that is malformed in a way the
first check missed: JSON nested beyond the parser's recursion, JSON's non-numbers (NaN,
±Infinity, which the server would refuse), a URL that no request could use (an unclosed
IPv6 bracket, a port out of range, a space), a variable name with `=`. The outcome is exit
78 with one line naming the option, before anything starts: never a traceback, never a
run that retries an unusable URL as a network error, never a command that fails to start
(126) because of pwsup's own setting.
"""

from __future__ import annotations

import pytest

from helpers.runner import clean_env, pwsup_cmd, run
from pwsup.config.options import EnvName, JsonObject, Url

pytestmark = pytest.mark.hostile

DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
DEEP_LIST = '{"a":' + "[" * 3000
BAD_VALUES = [
    ("--auto-create-task-props", DEEP_OBJECT),
    ("--task-instance-metadata", DEEP_LIST),
    ("--execution-method-props", '{"x": NaN}'),
    ("--task-instance-metadata", '{"a": {"b": Infinity}}'),
    ("--auto-create-task-props", '{"a": [-Infinity]}'),
    ("--api-base-url", "http://[::1"),
    ("--api-base-url", "http://127.0.0.1:99999"),
    ("--api-base-url", "http://127.0.0.1:0"),
    ("--api-base-url", "http://a b"),
    ("--api-base-url", "http://"),
    ("--api-base-url", "http://x\x1b[31m"),
    ("--input-env-var-name", "X=Y"),
    ("--env-var-name-for-config", "A=B"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_VALUES,
                         ids=[f"{flag}={value[:20]!r}" for flag, value in BAD_VALUES])
@pytest.mark.parametrize("where", ["argv", "env"])
def test_an_unusable_value_is_exit_78_naming_the_option(flag: str, value: str,
                                                        where: str) -> None:
    env = clean_env()
    options = ["-k", "key", "-n", "task", "-i", "input"]
    if where == "argv":
        options += [flag, value]
    else:
        env["PROC_WRAPPER_" + flag[2:].upper().replace("-", "_")] = value
    result = run(pwsup_cmd(["echo", "started"], *options), env)
    assert result.returncode == 78, result
    assert "Traceback" not in result.stderr, result
    assert "started" not in result.stdout, result
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1, result
    assert flag in errors[0] or flag[2:].upper().replace("-", "_") in errors[0], result


GOOD_URLS = ["https://api.cloudreactor.io", "http://127.0.0.1:8000/api/", "http://[::1]:80",
             "http://user:secret@host:81/base", "HTTPS://EXAMPLE.COM"]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_usable_urls_are_kept(url: str) -> None:
    assert Url().parse(url) == url.rstrip("/")


def test_json_options_take_finite_numbers_and_ordinary_depth() -> None:
    deep = '{"a":' * 50 + "1.5e300" + "}" * 50
    assert isinstance(JsonObject().parse(deep), dict)


def test_a_variable_name_is_kept_as_given() -> None:
    assert EnvName().parse("MY_INPUT") == "MY_INPUT"
    assert EnvName().parse("lower.dots-and-dashes") == "lower.dots-and-dashes"
