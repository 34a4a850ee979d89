"""Formats: choice, parsing (safe, quiet about content), serialising output files."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from pwsup.secrets import formats
from pwsup.secrets.errors import FormatError


@pytest.mark.parametrize(("mime", "fmt"), [
    ("application/json", "json"), ("text/x-json", "json"),
    ("application/json; charset=utf-8", "json"), ("APPLICATION/JSON", "json"),
    ("application/x-yaml", "yaml"), ("application/yaml", "yaml"), ("text/vnd.yaml", "yaml"),
    ("text/yaml", "yaml"), ("text/x-yaml", "yaml"),
    ("text/plain", None), ("", None), (None, None),
])
def test_mime_types(mime: str | None, fmt: str | None) -> None:
    assert formats.from_mime_type(mime) == fmt


@pytest.mark.parametrize(("address", "fmt"), [
    ("/etc/app/.env", "dotenv"), ("secret.env", "dotenv"), ("prod.env.secret", "dotenv"),
    ("bucket/config.json", "json"), ("bucket/config.JSON#abc", "json"),
    ("x.yaml", "yaml"), ("x.yml", "yaml"), ("bucket/dir.json/file", None),
    ("arn:aws:secretsmanager:us-east-1:1:secret:db", None), ("noext", None),
    ("a.txt", None),
])
def test_guess_from_address(address: str, fmt: str | None) -> None:
    assert formats.guess_from_address(address) == fmt


def test_choice_order() -> None:
    assert formats.choose("yaml", "json", "dotenv", "json") == "yaml"
    assert formats.choose(None, "json", "dotenv", "yaml") == "json"
    assert formats.choose(None, None, "dotenv", "json") == "dotenv"
    assert formats.choose(None, None, None, "json") == "json"
    assert formats.choose(None, None, None, None) is None


def test_normalize() -> None:
    assert formats.normalize("JSON") == "json"
    assert formats.normalize("yml") == "yaml"
    assert formats.normalize("text") is None
    assert formats.normalize(None) is None


def test_parsers() -> None:
    assert formats.parse('{"a": [1, true, null]}', "json") == {"a": [1, True, None]}
    assert formats.parse("a:\n  b: [1, 2]\n", "yaml") == {"a": {"b": [1, 2]}}
    assert formats.parse("A=1\nexport B='two words'\n# c\nC\n", "dotenv") == {
        "A": "1", "B": "two words", "C": None}
    with pytest.raises(FormatError):
        formats.parse("x", "toml")


@pytest.mark.parametrize(("text", "fmt"), [
    ('{"password": "hunter2-secret"', "json"),
    ("password: [hunter2-secret\n", "yaml"),
    ("a: b: hunter2-secret", "yaml"),
    ('A=1\nB="hunter2-secret\n', "dotenv"),
    ('{"password": "hunter2-secret"}', "dotenv"),
])
def test_parse_errors_do_not_quote_the_text(text: str, fmt: str) -> None:
    with pytest.raises(FormatError) as caught:
        formats.parse(text, fmt)
    assert "hunter2" not in str(caught.value)
    assert "line" in str(caught.value)


def test_yaml_is_safe_loaded() -> None:
    with pytest.raises(FormatError):
        formats.parse("!!python/object/apply:os.system ['true']", "yaml")


def test_serialize_json_and_yaml_round_trip() -> None:
    data = {"a": {"b": [1, "x"]}, "c": None, "d": True}
    assert json.loads(formats.serialize(data, "json")) == data
    assert yaml.safe_load(formats.serialize(data, "yaml")) == data
    with pytest.raises(FormatError):
        formats.serialize(data, "ini")


def test_serialize_dotenv_quotes_literally() -> None:
    text = formats.serialize({"A": "it's $HOME \\ ${X}", "B": "line1\nline2"}, "dotenv")
    assert text.startswith("A='")
    assert dotenv_values(stream=io.StringIO(text), interpolate=False) == {
        "A": "it's $HOME \\ ${X}", "B": "line1\nline2"}


_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0\r"),
                  max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_dotenv_output_round_trips(data: dict[str, str]) -> None:
    text = formats.serialize(data, "dotenv")
    assert dict(dotenv_values(stream=io.StringIO(text), interpolate=False)) == data
