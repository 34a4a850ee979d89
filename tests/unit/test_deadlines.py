"""Deadlines on an injectable monotonic clock."""

from __future__ import annotations

from pwsup.supervisor.deadlines import Deadlines


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadlines_fire_in_order_and_only_when_due() -> None:
    """Due deadlines fire earliest first; cancelled ones never fire."""
    clock = FakeClock()
    deadlines = Deadlines(clock)
    fired: list[str] = []
    deadlines.after(2.0, "b", lambda: fired.append("b"))
    deadlines.after(1.0, "a", lambda: fired.append("a"))
    deadlines.after(1.5, "x", lambda: fired.append("x")).cancel()
    assert deadlines.next_timeout() == 1.0
    deadlines.fire_due()
    assert fired == []
    clock.now += 1.6
    assert deadlines.next_timeout() == 0.0
    deadlines.fire_due()
    assert fired == ["a"]
    assert deadlines.next_timeout() is not None
    clock.now += 1.0
    deadlines.fire_due()
    assert fired == ["a", "b"]
    assert deadlines.next_timeout() is None


def test_same_time_deadlines_keep_scheduling_order() -> None:
    """Ties fire in the order they were scheduled."""
    clock = FakeClock()
    deadlines = Deadlines(clock)
    fired: list[int] = []
    for i in range(5):
        deadlines.after(1.0, str(i), lambda i=i: fired.append(i))  # type: ignore[misc]
    clock.now += 1.0
    deadlines.fire_due()
    assert fired == [0, 1, 2, 3, 4]
