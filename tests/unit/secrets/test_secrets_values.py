"""Location → value: the cache, TTL staleness, format choice and projection."""

from __future__ import annotations

import pytest

from pwsup.secrets.cache import Cache
from pwsup.secrets.errors import FetchError, FormatError, UnresolvedError
from pwsup.secrets.locations import parse_location
from pwsup.secrets.projection import project, project_value
from pwsup.secrets.providers.base import Fetched
from pwsup.secrets.providers.plain import PlainProvider
from pwsup.secrets.values import ValueSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A cacheable provider serving fixed documents and counting its fetches."""

    cacheable = True

    def __init__(self, documents: dict[str, Fetched]) -> None:
        self.documents = documents
        self.fetches: list[str] = []

    def fetch(self, address: str) -> Fetched:
        self.fetches.append(address)
        if address not in self.documents:
            raise FetchError("no such document")
        return self.documents[address]


def _source(provider: Counting, cache: Cache | None = None) -> ValueSource:
    return ValueSource({"AWS_SM": provider, "FILE": provider, "PLAIN": PlainProvider()},
                       cache if cache is not None else Cache())


def test_one_fetch_serves_every_jsonpath() -> None:
    provider = Counting({"db": Fetched('{"user": "app", "password": "pw"}')})
    source = _source(provider)
    assert source.evaluate(parse_location("AWS_SM:db|JP:$.user")) == "app"
    assert source.evaluate(parse_location("AWS_SM:db!json|JP:$.password")) == "pw"
    assert source.evaluate(parse_location("AWS_SM:db")) == '{"user": "app", "password": "pw"}'
    assert provider.fetches == ["db"]
    assert source.fetch_count == 1


def test_values_are_private_copies() -> None:
    source = _source(Counting({"c.json": Fetched('{"a": {"b": 1}}')}))
    first = source.evaluate(parse_location("FILE:c.json"))
    first["a"]["b"] = 2
    assert source.evaluate(parse_location("FILE:c.json")) == {"a": {"b": 1}}


def test_format_precedence() -> None:
    provider = Counting({
        "x.yaml": Fetched("a: 1"),
        "hinted": Fetched("a: 1", "yaml"),
        "x.json": Fetched("a: 1", "yaml"),
    })
    source = _source(provider)
    assert source.evaluate(parse_location("FILE:x.yaml")) == {"a": 1}
    assert source.evaluate(parse_location("FILE:hinted")) == {"a": 1}
    assert source.evaluate(parse_location("FILE:x.json")) == {"a": 1}  # hint beats extension
    with pytest.raises(FormatError, match="dotenv"):  # the explicit format wins
        source.evaluate(parse_location("FILE:x.yaml!dotenv"))
    assert source.evaluate(parse_location("FILE:hinted"), default_format="json") == {"a": 1}


def test_plain_addresses_are_not_guessed_from() -> None:
    source = _source(Counting({}))
    assert source.evaluate(parse_location("PLAIN:my.json")) == "my.json"
    assert source.evaluate(parse_location("PLAIN:a.env.b")) == "a.env.b"


def test_null_keeps_the_text_and_jsonpath_reads_json() -> None:
    source = _source(Counting({}))
    assert source.evaluate(parse_location("PLAIN:null!json")) == "null"
    assert source.evaluate(parse_location('PLAIN:{"a": [1]}|JP:$.a')) == [1]
    with pytest.raises(UnresolvedError):
        source.evaluate(parse_location('PLAIN:{"a": 1}|JP:$.b'))


def test_cache_ttl_with_a_fake_clock() -> None:
    clock = Clock()
    cache = Cache(ttl=10, clock=clock)
    provider = Counting({"s": Fetched("v1")})
    source = _source(provider, cache)
    source.evaluate(parse_location("AWS_SM:s"))
    clock.now += 10
    source.evaluate(parse_location("AWS_SM:s"))
    assert provider.fetches == ["s"]  # age == TTL: still fresh
    clock.now += 0.5
    provider.documents["s"] = Fetched("v2")
    assert source.evaluate(parse_location("AWS_SM:s")) == "v2"
    assert provider.fetches == ["s", "s"]


def test_cache_without_ttl_never_goes_stale() -> None:
    clock = Clock()
    cache = Cache(ttl=None, clock=clock)
    entry = cache.put("AWS_SM", "a", Fetched("x"))
    clock.now += 1e9
    assert cache.get("AWS_SM", "a") is entry
    assert cache.get("AWS_SM", "b") is None
    assert cache.size == 1


def test_failed_fetch_is_not_cached() -> None:
    provider = Counting({})
    source = _source(provider)
    for _ in range(2):
        with pytest.raises(FetchError):
            source.evaluate(parse_location("AWS_SM:missing"))
    assert provider.fetches == ["missing", "missing"]


def test_unexpected_exceptions_become_fetch_errors_without_their_message() -> None:
    class Broken:
        cacheable = True

        def fetch(self, address: str) -> Fetched:
            raise KeyError("hunter2")

    source = ValueSource({"AWS_SM": Broken()}, Cache())
    with pytest.raises(FetchError) as caught:
        source.evaluate(parse_location("AWS_SM:x"))
    assert str(caught.value) == "unexpected error: KeyError"


def test_fetched_repr_hides_text() -> None:
    assert "hunter2" not in repr(Fetched("hunter2"))


@pytest.mark.parametrize(("value", "text"), [
    (True, "TRUE"), (False, "FALSE"), (None, ""), ([1, 2], "[1, 2]"),
    ({"a": "b"}, '{"a": "b"}'), (5, "5"), (1.5, "1.5"), ("x\n", "x\n"),
])
def test_projection(value: object, text: str) -> None:
    assert project_value(value) == text


def test_project_mapping() -> None:
    assert project({"A": 1, 2: None}) == {"A": "1", "2": ""}
