"""Frozen value classes without `dataclasses`: the messages between pwsup's processes and the
reporter's values (API outcomes and decisions, runtime metadata).

They were dataclasses, but `dataclasses` imports `inspect`, and with it `ast`, `dis`,
`tokenize` and more: measured in `pwsup -- sleep` reporting to an API server, 1.3 MiB of
private memory in the parent and 0.9 MiB in the reporter, per supervised service, for
classes that need none of it. `Record` gives what they used:

- an `__init__` taking the fields in order, positionally or by name, with defaults
  (a class attribute of the field's name) and per-instance defaults (`field(default_factory=…)`);
- `==` between records of the same class, comparing the fields; `hash` over the fields;
- a dataclass-style `repr`, and `__match_args__`;
- immutability: assigning or deleting a field raises `FrozenError` (an AttributeError, like
  `dataclasses.FrozenInstanceError`), unless the class says `frozen=False` (then, like a
  non-frozen dataclass, it is unhashable);
- `astuple(record)` (shallow) and `replace(record, **changes)`.

Fields are the class's own annotations, in order, then a subclass's after its base's. Type
checkers see records as dataclasses (`dataclass_transform`), so every construction is checked.
"""

from __future__ import annotations

from pwsup.errors import PwsupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
    R = TypeVar("R", bound="Record")
else:
    def dataclass_transform(**_kwargs):  # type checkers only
        return lambda cls: cls


class FrozenError(PwsupError, AttributeError):
    """A field of a frozen record was assigned or deleted."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is made anew for each record (`default_factory()`)."""
    return _Factory(default_factory)  # type: ignore[return-value]


_MISSING = object()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base class of the value classes (see the module's documentation)."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, object]] = {}
    _frozen: ClassVar[bool] = True

    def __init_subclass__(cls, *, frozen: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - no inspect
        own = [name for name, kind in annotations.items()
               if not str(kind).startswith(("ClassVar", "typing.ClassVar"))]
        defaults = dict(cls._defaults)
        for name in own:
            value = cls.__dict__.get(name, _MISSING)
            if value is not _MISSING:
                defaults[name] = value
                if isinstance(value, _Factory):
                    delattr(cls, name)  # no shared mutable default left on the class
        fields = (*cls._fields, *own)
        _check_order(cls.__name__, fields, defaults)
        cls._fields, cls._defaults, cls._frozen = fields, defaults, frozen
        setattr(cls, "__match_args__", fields)  # noqa: B010 - a class attribute mypy fixes
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, "
                            f"{len(args)} given")
        values = dict(zip(fields, args, strict=False))  # fewer args than fields
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{type(self).__name__}() got an unexpected argument {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__}() got {name!r} twice")
            values[name] = value
        for name in fields:
            value = values.get(name, _MISSING)
            if value is _MISSING:
                value = self._defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise FrozenError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen:
            raise FrozenError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return astuple(self) == astuple(other)

    def __hash__(self) -> int:
        return hash(astuple(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"


def _check_order(name: str, fields: tuple[str, ...], defaults: dict[str, object]) -> None:
    """A field without a default may not follow one with a default (as in a dataclass)."""
    seen_default = False
    for field_name in fields:
        if field_name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{name}: field {field_name!r} without a default follows one "
                            "with a default")


def astuple(record: Record) -> tuple[Any, ...]:
    """The record's field values, in order (the values themselves, not copies)."""
    return tuple(getattr(record, name) for name in record._fields)


def replace(record: R, **changes: Any) -> R:
    """A copy of `record` with some fields changed."""
    values = {name: getattr(record, name) for name in record._fields}
    values.update(changes)
    return type(record)(**values)
