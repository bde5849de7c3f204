"""The resource schemas compiled into plain functions that read valid input: the same records marshmallow gives, at a
fraction of its cost, and marshmallow itself for anything else, so that every error is named as the schema names it.

A compiled reader walks the fields a schema declares: strings, lists and nested objects are checked inline, every
other field goes through its own `deserialize` (validators included), then the schema's `validates_schema` and
`post_load` hooks run on what was read, as marshmallow runs them. At the first thing that is not plainly valid (a
wrong type, a null, a missing required field, a validator's refusal) it gives up, and `load` asks marshmallow.
tests/unit/test_schema_fast_path.py compares the two on every resource of the test data and on mutated ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

Reader = Callable[[Any], Any]


class GiveUp(Exception):
    """The input is not plainly valid: marshmallow reads it (and names what is wrong)."""


def load(schema: Schema, data: Any) -> Any:
    """What `schema.load(data)` gives, through the compiled reader when the input is plainly valid."""
    try:
        return compiled(schema)(data)
    except (GiveUp, RecursionError):
        return schema.load(data)


_COMPILED: dict[int, Reader] = {}
_KEEP: list[Schema] = []  # the schemas compiled (their ids key _COMPILED)


def compiled(schema: Schema) -> Reader:
    reader = _COMPILED.get(id(schema))
    if reader is None:
        reader = _compile_schema(schema)
    return reader


def _compile_schema(schema: Schema) -> Reader:
    if not _compilable(schema):
        return _generic_schema(schema)
    by_key: dict[str, tuple[str, Reader | None, Callable[[Any, Any], Any] | None]] = {}
    when_absent: list[tuple[str, str, bool, Any]] = []  # the fields that matter when absent: required or defaulted
    validators = [getattr(schema, name) for name, _, _ in schema._hooks[VALIDATES_SCHEMA]]
    post_loads = [getattr(schema, name) for name, _, _ in schema._hooks[POST_LOAD]]
    unknown = schema.unknown

    def read(data: Any) -> Any:
        if type(data) is not dict:
            raise GiveUp
        loaded: dict[str, Any] = {}
        for key, raw in data.items():
            found = by_key.get(key)
            if found is None:
                continue  # unknown: excluded
            attr, reader, generic = found
            if reader is _string:
                if type(raw) is not str:
                    raise GiveUp
                loaded[attr] = raw
            elif reader is not None:
                loaded[attr] = reader(raw)
            else:
                loaded[attr] = generic(raw, data)  # type: ignore[misc]
        for key, attr, required, default in when_absent:
            if key not in data:
                if required:
                    raise GiveUp
                loaded[attr] = default() if callable(default) else default
        try:
            for validator in validators:
                validator(loaded, partial=None, many=False, unknown=unknown)
            for post_load in post_loads:
                loaded = post_load(loaded, partial=None, many=False, unknown=unknown)
        except ValidationError:
            raise GiveUp from None
        return loaded

    # Registered before the fields are compiled: a schema may nest itself (an extension holds extensions).
    _COMPILED[id(schema)] = read
    _KEEP.append(schema)
    for name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute or name
        reader = _value_reader(field)
        by_key[key] = (attr, reader, None if reader is not None else _generic_field(field, key))
        if field.required or field.load_default is not missing:
            when_absent.append((key, attr, field.required, field.load_default))
    return read


def _compilable(schema: Schema) -> bool:
    hooks = schema._hooks
    plain_hooks = all(
        not many and not kwargs.get("pass_original")
        for tag in (VALIDATES_SCHEMA, POST_LOAD)
        for _, many, kwargs in hooks[tag]
    )
    return (
        plain_hooks
        and not hooks[PRE_LOAD]
        and not hooks[VALIDATES]
        and schema.unknown == EXCLUDE
        and not schema.many
        and schema.partial is None
        and schema.only is None
        and not schema.exclude
    )


def _generic_schema(schema: Schema) -> Reader:
    def read(data: Any) -> Any:
        try:
            return schema.load(data)
        except ValidationError:
            raise GiveUp from None

    _COMPILED[id(schema)] = read
    _KEEP.append(schema)
    return read


def _plain(field: fields.Field) -> bool:
    return not (field.validators or field.pre_load or field.post_load or field.allow_none)


def _generic_field(field: fields.Field, key: str) -> Callable[[Any, Any], Any]:
    """The field's own code, given the value's object as marshmallow gives it: what `Field.deserialize` does for a
    value that is there (its `_deserialize`, then its validators)."""
    if field.pre_load or field.post_load:

        def read_whole(value: Any, data: Any) -> Any:
            try:
                return field.deserialize(value, key, data)
            except ValidationError:
                raise GiveUp from None

        return read_whole
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def read(value: Any, data: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise GiveUp
        try:
            found = field._deserialize(value, key, data)
            for validator in validators:
                if validator(found) is False:
                    raise GiveUp
        except ValidationError:
            raise GiveUp from None
        return found

    return read


def _value_reader(field: fields.Field) -> Reader | None:
    """An inline reader for the fields that make up most of a resource; None where the field's own code is used."""
    if not _plain(field):
        return None
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Boolean:
        boolean = cast(fields.Boolean, field)
        return _boolean if boolean.truthy == {True} and boolean.falsy == {False} else None
    if kind is fields.Nested:
        nested = cast(fields.Nested, field)
        plain = not nested.many and nested.only is None and not nested.exclude and nested.unknown is None
        return _nested(nested) if plain else None
    if kind is fields.List:
        inner = cast(fields.List, field).inner
        return _list(_value_reader(inner) or _generic_value(inner))
    return None


def _string(value: Any) -> str:
    if type(value) is not str:
        raise GiveUp
    return value


def _boolean(value: Any) -> bool:
    if value is not True and value is not False:
        raise GiveUp
    return value


def _nested(field: fields.Nested) -> Reader:
    holder: list[Reader] = []

    def read(value: Any) -> Any:
        if not holder:  # compiled when first used: the nested schema may be the one being compiled
            holder.append(compiled(field.schema))
        return holder[0](value)

    return read


def _list(inner: Reader) -> Reader:
    def read(value: Any) -> list[Any]:
        if type(value) is not list:
            raise GiveUp
        return [inner(each) for each in value]

    return read


def _generic_value(field: fields.Field) -> Reader:
    def read(value: Any) -> Any:
        try:
            return field.deserialize(value)
        except ValidationError:
            raise GiveUp from None

    return read
