"""MetadataCache: fetch once, refresh when due or forced, remember what worked."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from pwsup.config.params import Params
from pwsup.runtime import RuntimeMetadata, detect
from pwsup.runtime.cache import MetadataCache
from pwsup.runtime.context import FetchContext, Fetcher
from pwsup.runtime.errors import MetadataError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Script:
    """A fake ECS fetcher whose answers the test scripts; records every call."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: list[Callable[[], RuntimeMetadata]] = []

    def fetch(self, ctx: FetchContext) -> RuntimeMetadata:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else self.ok(None)
        return answer()

    @staticmethod
    def ok(exit_code: int | None) -> Callable[[], RuntimeMetadata]:
        return lambda: RuntimeMetadata(execution={"execution_method_type": "AWS ECS"},
                                       source="AWS ECS", sidecar=True,
                                       main_container_exit_code=exit_code)

    @staticmethod
    def fail() -> Callable[[], RuntimeMetadata]:
        def raise_() -> RuntimeMetadata:
            raise MetadataError("agent unreachable")

        return raise_


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    fake = Script()
    fetchers = dict(detect.FETCHERS)
    fetchers["AWS ECS"] = Fetcher("AWS ECS", lambda ctx: "ECS" in ctx.environ, fake.fetch,
                                  "ECS")
    monkeypatch.setattr(detect, "FETCHERS", fetchers)
    return fake


def cache(interval: float | None = None, clock: Clock | None = None,
          environ: dict[str, str] | None = None) -> MetadataCache:
    return MetadataCache(Params(runtime_metadata_refresh_interval=interval),
                         {"ECS": "1"} if environ is None else environ,
                         clock=clock or Clock())


def test_fetches_once_without_an_interval(script: Script) -> None:
    metadata_cache = cache()
    assert metadata_cache.current is None
    first = metadata_cache.get()
    assert metadata_cache.get() is first
    assert metadata_cache.refresh() is first
    assert script.calls == 1
    assert metadata_cache.current is first
    assert metadata_cache.generation == 1


def test_refreshes_when_the_interval_elapsed(script: Script) -> None:
    clock = Clock()
    metadata_cache = cache(interval=30, clock=clock)
    metadata_cache.get()
    clock.now += 29.9
    metadata_cache.get()
    assert script.calls == 1
    clock.now += 0.1
    metadata_cache.get()
    assert script.calls == 2
    metadata_cache.get()
    assert script.calls == 2
    assert metadata_cache.generation == 2


def test_zero_interval_means_no_periodic_refresh(script: Script) -> None:
    clock = Clock()
    metadata_cache = cache(interval=0, clock=clock)
    metadata_cache.get()
    clock.now += 1e6
    metadata_cache.get()
    assert script.calls == 1


def test_forced_refresh_sees_the_main_container_exit(script: Script) -> None:
    """Without any refresh interval, polling refresh(force=True) sees the exit: a sidecar
    polls this way to learn the main container's exit code."""
    script.answers = [Script.ok(None), Script.ok(None), Script.ok(7)]
    metadata_cache = cache()
    assert metadata_cache.get().main_container_exit_code is None
    assert metadata_cache.refresh(force=True).main_container_exit_code is None
    assert metadata_cache.get().main_container_exit_code is None
    assert metadata_cache.refresh(force=True).main_container_exit_code == 7
    assert script.calls == 3


def test_failed_refresh_keeps_the_last_good_metadata(script: Script,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    script.answers = [Script.ok(None), Script.fail(), Script.ok(0)]
    metadata_cache = cache()
    good = metadata_cache.get()
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        assert metadata_cache.refresh(force=True) is good
    assert "agent unreachable" in caplog.text
    assert metadata_cache.generation == 1
    assert metadata_cache.refresh(force=True).main_container_exit_code == 0
    assert metadata_cache.generation == 2


def test_first_failure_gives_generic_and_detection_is_retried(script: Script) -> None:
    script.answers = [Script.fail(), Script.fail(), Script.ok(None)]
    metadata_cache = cache()
    generic = metadata_cache.get()
    assert generic.source == "Generic"
    assert metadata_cache.get() is generic, "not due: no refetch"
    assert metadata_cache.refresh(force=True) is generic
    assert metadata_cache.generation == 1
    assert metadata_cache.refresh(force=True).source == "AWS ECS"
    assert metadata_cache.generation == 2


def test_repeated_failures_warn_once_per_streak(script: Script,
                                                caplog: pytest.LogCaptureFixture) -> None:
    script.answers = [Script.ok(None), Script.fail(), Script.fail(), Script.fail(),
                      Script.ok(None), Script.fail()]
    metadata_cache = cache()
    with caplog.at_level(logging.DEBUG, logger="pwsup.runtime"):
        for _ in script.answers[:]:
            metadata_cache.refresh(force=True)
    levels = [record.levelname for record in caplog.records]
    assert levels == ["WARNING", "DEBUG", "DEBUG", "WARNING"]


def test_the_working_fetcher_is_remembered(script: Script, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    environ = {"ECS": "1"}
    metadata_cache = cache(environ=environ)
    metadata_cache.get()
    seen: list[tuple[str, ...]] = []
    real_detect = detect.detect

    def spy(ctx: FetchContext, names: tuple[str, ...], *, forced: bool,
            level: int) -> detect.Detection:
        seen.append(tuple(names))
        return real_detect(ctx, names, forced=forced, level=level)

    monkeypatch.setattr(detect, "detect", spy)
    environ["KUBERNETES_SERVICE_HOST"] = "10.96.0.1"
    assert metadata_cache.refresh(force=True).source == "AWS ECS"
    assert seen == [("AWS ECS",)]
