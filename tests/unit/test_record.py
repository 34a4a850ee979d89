"""`Record`: the dataclass behaviour the messages and the reporter's values rely on, without
importing `dataclasses` (whose `inspect` costs each pwsup process about a MiB)."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import textwrap

import pytest

from pwsup.util.record import FrozenError, Record, astuple, field, replace


class Point(Record):
    x: int
    y: int = 0
    tags: dict[str, str] = field(default_factory=dict)


class Counter(Record, frozen=False):
    count: int = 0


def test_init_takes_fields_in_order_by_name_and_with_defaults() -> None:
    assert astuple(Point(1)) == (1, 0, {})
    assert astuple(Point(1, 2, {"a": "b"})) == (1, 2, {"a": "b"})
    assert astuple(Point(y=3, x=4)) == (4, 3, {})
    assert Point(1).tags is not Point(1).tags  # a factory default is made per record


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}), ((1, 2, {}, 4), {}), ((1,), {"x": 2}), ((1,), {"z": 2}),
])
def test_bad_arguments_raise_type_error(args: tuple[object, ...],
                                        kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Point(*args, **kwargs)  # type: ignore[arg-type, misc]


def test_equality_hash_and_repr_go_by_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != Counter(1)  # another class: never equal
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Point(1, 2, {}))  # a dict field: unhashable, as in a frozen dataclass
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags={})"


def test_frozen_unless_said_otherwise() -> None:
    point = Point(1)
    with pytest.raises(FrozenError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenError):
        del point.x  # type: ignore[misc]
    assert isinstance(FrozenError("x"), AttributeError)
    counter = Counter()
    counter.count += 1
    assert counter.count == 1
    with pytest.raises(TypeError):
        hash(counter)


def test_replace_copy_pickle_and_match() -> None:
    point = Point(1, 2, {"a": "b"})
    assert replace(point, y=5) == Point(1, 5, {"a": "b"})
    assert copy.copy(point) == point
    assert pickle.loads(pickle.dumps(point)) == point
    assert json.loads(json.dumps(vars(point))) == {"x": 1, "y": 2, "tags": {"a": "b"}}
    match point:
        case Point(x, y):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("no match")


def test_a_field_without_default_after_one_with_default_is_refused() -> None:
    with pytest.raises(TypeError):
        class Bad(Record):
            a: int = 0
            b: int


def test_neither_the_parent_nor_the_reporter_imports_dataclasses() -> None:
    """The point of `Record`: measured per supervised service, `dataclasses` and the
    `inspect` it imports cost 1.3 MiB in the parent (the messages) and 0.9 MiB in the
    reporter. A fresh interpreter imports the parent's modules, then the reporter with its
    API sink. (From Python 3.12 on, urllib3's `importlib.metadata` imports `inspect` in the
    reporter anyway; the parent stays without it.)"""
    code = textwrap.dedent("""
        import json, sys
        import pwsup.supervisor.parent, pwsup.ipc.messages
        parent = sorted(sys.modules)
        import pwsup.supervisor.reporter, pwsup.supervisor.reporting.api_sink
        import pwsup.runtime.detect
        print(json.dumps([parent, sorted(sys.modules)]))
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    parent, reporter = (set(names) for names in json.loads(result.stdout.splitlines()[-1]))
    assert "pwsup.ipc.messages" in parent
    assert {"dataclasses", "inspect"} & parent == set()
    assert "requests" in reporter
    assert "dataclasses" not in reporter
    if sys.version_info < (3, 12):
        assert "inspect" not in reporter
