"""The location grammar: providers, formats, transforms, and the fixed catch-all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pwsup.secrets.errors import LocationError
from pwsup.secrets.locations import (
    AWS_APP_CONFIG,
    AWS_S3,
    AWS_SM,
    AWS_SSM,
    CONFIG,
    ENV,
    FILE,
    PLAIN,
    Location,
    legacy_provider_of,
    parse_location,
)

SM_ARN = "arn:aws:secretsmanager:us-east-2:1234567890:secret:config-PPrpY"
SSM_ARN = "arn:aws:ssm:eu-west-1:1234567890:parameter/app/db"


@pytest.mark.parametrize(("text", "expected"), [
    ("PLAIN:hello", Location(PLAIN, "hello")),
    ("PLAIN:", Location(PLAIN, "")),
    ("ENV:OTHER", Location(ENV, "OTHER")),
    ("CONFIG:$.db.user", Location(CONFIG, "$.db.user")),
    ("AWS_SM:my/secret", Location(AWS_SM, "my/secret")),
    (f"AWS_SM:{SM_ARN}", Location(AWS_SM, SM_ARN)),
    ("AWS_SSM:/app/db", Location(AWS_SSM, "/app/db")),
    ("AWS_SSM:ssm:/app/db", Location(AWS_SSM, "/app/db")),
    ("AWS_APP_CONFIG:app/env/prof", Location(AWS_APP_CONFIG, "app/env/prof")),
    ("AWS_APPCONFIG:app/env/prof", Location(AWS_APP_CONFIG, "app/env/prof")),
    ("AWS_S3:bucket/key.json", Location(AWS_S3, "bucket/key.json")),
    ("AWS_S3:arn:aws:s3:::bucket/key", Location(AWS_S3, "bucket/key")),
    ("FILE:/etc/app.env", Location(FILE, "/etc/app.env")),
    ("FILE:file:///etc/app.env", Location(FILE, "/etc/app.env")),
])
def test_explicit_provider_prefixes(text: str, expected: Location) -> None:
    assert parse_location(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (SM_ARN, Location(AWS_SM, SM_ARN)),
    ("arn:aws-cn:secretsmanager:cn-north-1:1:secret:x", Location(
        AWS_SM, "arn:aws-cn:secretsmanager:cn-north-1:1:secret:x")),
    ("ssm:/app/db:3", Location(AWS_SSM, "/app/db:3")),
    (SSM_ARN, Location(AWS_SSM, SSM_ARN)),
    ("aws:appconfig:app/env/prof", Location(AWS_APP_CONFIG, "app/env/prof")),
    ("arn:aws:s3:::bucket/dir/key.yml#v1", Location(AWS_S3, "bucket/dir/key.yml#v1")),
    ("file:///home/app/.env", Location(FILE, "/home/app/.env")),
    ("file://relative/x.json", Location(FILE, "relative/x.json")),
])
def test_value_prefixes_are_detected(text: str, expected: Location) -> None:
    assert parse_location(text) == expected


@pytest.mark.parametrize(("suffix", "fmt"), [
    ("!json", "json"), ("!JSON", "json"), ("!yaml", "yaml"), ("!YAML", "yaml"),
    ("!yml", "yaml"), ("!dotenv", "dotenv"), ("!DotEnv", "dotenv"),
])
def test_format_suffix(suffix: str, fmt: str) -> None:
    assert parse_location(f"{SM_ARN}{suffix}") == Location(AWS_SM, SM_ARN, fmt)


def test_unknown_format_suffix_stays_in_the_address() -> None:
    assert parse_location("PLAIN:hello!text") == Location(PLAIN, "hello!text")
    assert parse_location("PLAIN:a!b!json") == Location(PLAIN, "a!b", "json")


def test_transforms() -> None:
    assert parse_location("PLAIN:{}|SELF") == Location(PLAIN, "{}")
    assert parse_location(f"{SM_ARN}!json|JP:$.user") == Location(AWS_SM, SM_ARN, "json", "$.user")
    assert parse_location("ENV:DB|JP:$.a[*]") == Location(ENV, "DB", None, "$.a[*]")


def test_bar_too_close_to_the_end_or_at_the_start_is_part_of_the_address() -> None:
    assert parse_location("PLAIN:a|b") == Location(PLAIN, "a|b")
    assert parse_location("PLAIN:|JP:$.x") == Location(PLAIN, "", None, "$.x")
    with pytest.raises(LocationError):
        parse_location("|JP:$.x")  # a bar at the start is no transform: no provider left


def test_unknown_transform_is_an_error_without_the_value() -> None:
    with pytest.raises(LocationError) as caught:
        parse_location("PLAIN:hunter2|hunter3")
    assert "hunter" not in str(caught.value)
    with pytest.raises(LocationError):
        parse_location("PLAIN:x|JP:   ")


def test_unrecognised_location_is_an_error_not_a_file() -> None:
    with pytest.raises(LocationError) as caught:
        parse_location("correct-horse-battery-staple")
    assert "correct-horse" not in str(caught.value)
    assert "no provider recognised" in str(caught.value)
    with pytest.raises(LocationError):
        parse_location("/etc/passwd")  # a resolvable variable needs a provider
    with pytest.raises(LocationError):
        parse_location("AWS_SN:typo")


@pytest.mark.parametrize("text", [".env", "secret.env", "conf/app.json", "/etc/app/x.yaml",
                                  "./local.env", "../up/config.json"])
def test_top_level_path_like_locations_are_files(text: str) -> None:
    assert parse_location(text, top_level=True) == Location(FILE, text)


@pytest.mark.parametrize("text", ["hunter2", '{"a": 1}', "A=b", "two words.env", "..", "."])
def test_top_level_non_paths_are_errors(text: str) -> None:
    with pytest.raises(LocationError):
        parse_location(text, top_level=True)


@pytest.mark.parametrize("text", ["ENV:X", "CONFIG:$.a"])
def test_top_level_rejects_env_and_config(text: str) -> None:
    with pytest.raises(LocationError, match="top-level"):
        parse_location(text, top_level=True)


def test_empty_addresses() -> None:
    with pytest.raises(LocationError, match="empty address"):
        parse_location("FILE:")
    with pytest.raises(LocationError):
        parse_location("")
    with pytest.raises(LocationError):
        parse_location("!json")


def test_forced_provider_legacy_form() -> None:
    assert parse_location("J", provider=ENV) == Location(ENV, "J")
    assert parse_location("ENV:J", provider=ENV) == Location(ENV, "J")
    assert parse_location("J|JP:$.password", provider=ENV) == Location(ENV, "J", None, "$.password")
    assert parse_location("x", provider="AWS_APPCONFIG") == Location(AWS_APP_CONFIG, "x")
    with pytest.raises(LocationError):
        parse_location("x", provider="NOPE")


@pytest.mark.parametrize(("name", "expected"), [
    ("ENV_GREETING", (ENV, "GREETING")),
    ("AWS_SM_DB", (AWS_SM, "DB")),
    ("AWS_SSM_DB", (AWS_SSM, "DB")),
    ("AWS_APPCONFIG_X", (AWS_APP_CONFIG, "X")),
    ("AWS_APP_CONFIG_X", (AWS_APP_CONFIG, "X")),
    ("FILE_MODE", (FILE, "MODE")),
    ("ENV_", None),
    ("ENVIRONMENT", None),
    ("GREETING", None),
])
def test_legacy_provider_of(name: str, expected: tuple[str, str] | None) -> None:
    assert legacy_provider_of(name) == expected


def test_repr_hides_the_address() -> None:
    assert "hunter2" not in repr(parse_location("PLAIN:hunter2"))


MARKER = "Zq7SECRETzq7"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_any_string_parses_or_raises_location_error(text: str, top_level: bool) -> None:
    try:
        location = parse_location(text, top_level=top_level)
    except LocationError:
        return
    assert isinstance(location, Location)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.booleans())
def test_errors_never_contain_the_location(before: str, after: str, top_level: bool) -> None:
    message = ""
    try:
        parse_location(before + MARKER + after, top_level=top_level)
    except LocationError as error:
        message = str(error)
    assert MARKER not in message
