"""The option kinds: how text from argv or the environment becomes typed values."""

from __future__ import annotations

import pytest

from pwsup.config.loader import load
from pwsup.config.numbers import Integer, Probability, Seconds
from pwsup.config.options import (
    Boolean,
    Choice,
    JsonObject,
    Locations,
    Url,
    split_escaped,
)


@pytest.mark.parametrize("text", ["TRUE", "true", "1", "yes", "Yes", " on "])
def test_boolean_accepts_true_words(text: str) -> None:
    """TRUE/1/yes in any case are true (upstream took only TRUE and 1)."""
    assert Boolean().parse(text) is True


@pytest.mark.parametrize("text", ["FALSE", "false", "0", "no", "NO", "off"])
def test_boolean_accepts_false_words(text: str) -> None:
    """FALSE/0/no in any case are false."""
    assert Boolean().parse(text) is False


def test_boolean_rejects_anything_else() -> None:
    """Other words are an error naming what is accepted, not silently false."""
    with pytest.raises(ValueError, match="TRUE/FALSE"):
        Boolean().parse("maybe")


def test_integer_parses_numbers_and_rejects_text() -> None:
    """Integers are numbers, with a message naming the bad text."""
    assert Integer().parse(" 42 ") == 42
    with pytest.raises(ValueError, match="whole number, got 'x'"):
        Integer().parse("x")
    with pytest.raises(ValueError, match="whole number"):
        Integer().parse("1.5")


def test_integer_unlimited_maps_negative_to_none() -> None:
    """-1 (any negative) means no limit where the option says so."""
    assert Integer(minimum=0, unlimited=True).parse("-1") is None
    assert Integer(minimum=0, unlimited=True).parse("3") == 3


def test_integer_bounds() -> None:
    """Bounds are enforced with a message giving the bound."""
    with pytest.raises(ValueError, match="at least 1"):
        Integer(minimum=1).parse("0")
    with pytest.raises(ValueError, match="at most 65535"):
        Integer(maximum=65535).parse("70000")


def test_seconds_accept_fractions_and_unlimited() -> None:
    """Durations accept fractions; -1 means none only where allowed."""
    assert Seconds().parse("0.25") == 0.25
    assert Seconds(unlimited=True).parse("-1") is None
    with pytest.raises(ValueError, match="0 or more"):
        Seconds().parse("-1")
    with pytest.raises(ValueError, match="greater than 0"):
        Seconds(positive=True).parse("0")
    with pytest.raises(ValueError, match="finite"):
        Seconds().parse("inf")


def test_probability_range() -> None:
    """Probabilities are within [0, 1]."""
    assert Probability().parse("0.5") == 0.5
    with pytest.raises(ValueError, match="between 0 and 1"):
        Probability().parse("1.5")


def test_choice_is_case_insensitive_with_aliases() -> None:
    """Choices match case-insensitively and map aliases to their canonical value."""
    kind = Choice(("auto", "enable"), aliases=(("true", "enable"),))
    assert kind.parse("AUTO") == "auto"
    assert kind.parse("TRUE") == "enable"
    with pytest.raises(ValueError, match="one of auto, enable"):
        kind.parse("sometimes")


def test_json_object_only_objects() -> None:
    """JSON options take objects; other JSON or broken JSON is an error."""
    assert JsonObject().parse('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="JSON list"):
        JsonObject().parse("[1]")
    with pytest.raises(ValueError, match="not valid JSON"):
        JsonObject().parse("{nope")


def test_url_strips_trailing_slash() -> None:
    """The API base URL loses its trailing slash and must be http(s)."""
    assert Url().parse("https://api.example.com/") == "https://api.example.com"
    with pytest.raises(ValueError, match="http"):
        Url().parse("ftp://x")


def test_locations_split_on_commas_and_semicolons_with_escapes() -> None:
    """Location lists split on , and ; and a backslash escapes a separator."""
    assert Locations().parse(r"a,b;c\,d, ,") == ("a", "b", "c,d")
    assert split_escaped("x\\") == ["x\\"]


@pytest.mark.parametrize(("text", "expected"), [
    ("512M", 512 << 20), ("2G", 2 << 30), ("2g", 2 << 30), ("1.5GiB", 3 << 29),
    ("100MB", 100 << 20), ("100Mi", 100 << 20), ("104857600", 100 << 20), ("1T", 1 << 40),
    (" 64M ", 64 << 20), ("-1", None),
])
def test_memory_limit_takes_sizes_in_bytes_or_with_a_binary_suffix(
        text: str, expected: int | None) -> None:
    loaded = load(["--memory-limit", text, "--", "true"], {})
    assert loaded.params is not None, loaded.errors
    assert loaded.params.memory_limit == expected
    from_env = load(["--", "true"], {"PWSUP_MEMORY_LIMIT": text})
    assert from_env.params is not None, from_env.errors
    assert from_env.params.memory_limit == expected


def test_memory_limit_is_off_and_checked_every_quarter_second_by_default() -> None:
    loaded = load(["--", "true"], {})
    assert loaded.params is not None
    assert loaded.params.memory_limit is None
    assert loaded.params.memory_check_interval == 0.25
