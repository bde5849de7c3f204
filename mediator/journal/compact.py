"""The form the journal keeps a record in: the validated domain record, as compact JSON, read back without being
validated again.

`{"t": "Insuree", "key": ..., "village_key": ...}`: the record's class and its fields, those at their default left
out; dates are ISO strings, decimals strings (exact), tuples lists. Only what the mapping reads of an openIMIS
resource is kept, never the resource itself.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

import orjson

from mediator.openimis import records
from mediator.openimis.records import Record

CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        records.Insuree,
        records.Family,
        records.Area,
        records.Facility,
        records.CodeEntry,
        records.Policy,
        records.Claim,
        records.ClaimReview,
        records.ClaimLine,
        records.LineReview,
    )
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot keep a {type(value).__name__}")


def _fields(record: Any) -> dict[str, Any]:
    kept: dict[str, Any] = {"t": type(record).__name__}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            value = [_fields(v) for v in value]
        kept[f.name] = value
    return kept


def encode(record: Record) -> bytes:
    """The record as the journal keeps it; the same record always gives the same bytes (its content hash)."""
    return orjson.dumps(_fields(record), default=_plain, option=orjson.OPT_SORT_KEYS)


def decode(text: str | bytes) -> Record:
    """A record the journal kept, as it was when validated."""
    return typing.cast(Record, _build(orjson.loads(text)))


def _build(doc: dict[str, Any]) -> Any:
    cls = CLASSES[doc["t"]]
    converters = _converters(cls)
    return cls(**{name: converters[name](value) for name, value in doc.items() if name != "t"})


@cache
def _converters(cls: type) -> dict[str, Callable[[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How a kept JSON value becomes the field's type again."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = _converter(args[0]) if len(args) == 1 else (lambda v: v)
        return lambda v: None if v is None else inner(v)
    if hint is date:
        return date.fromisoformat
    if hint is Decimal:
        return Decimal
    origin = typing.get_origin(hint)
    if origin is tuple and (len(args) == 1 or args[1] is Ellipsis):
        item = _converter(args[0])
        return lambda v: tuple(item(x) for x in v)
    if origin is tuple:  # a fixed pair or triple: each place its own type
        places = [_converter(a) for a in args]
        return lambda v: tuple(convert(x) for convert, x in zip(places, v, strict=True))
    if origin is dict:
        value = _converter(args[1])
        return lambda v: {k: value(x) for k, x in v.items()}
    if dataclasses.is_dataclass(hint):
        return _build
    return lambda v: v
