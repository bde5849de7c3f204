"""Helpers of the journal's queries: rows an UPDATE touched, and lists cut to what one IN (...) may hold."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import ARRAY, CursorResult, String, any_, bindparam, func, select, text
from sqlalchemy import cast as cast_


def rowcount(result: Any) -> int:
    """Rows an UPDATE touched."""
    return int(cast(CursorResult[Any], result).rowcount)


CHUNK = 500


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def among(session: Any, column: Any, values: Sequence[str]) -> Any:
    """`column IN (values)` with the list as one parameter (a JSON array on SQLite, an array on PostgreSQL): a
    list of hundreds of keys costs SQLAlchemy a bound parameter each to build."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast_(bindparam(None, list(values), type_=ARRAY(String)), ARRAY(String)))
    return column.in_(select(text("value")).select_from(func.json_each(bindparam(None, json.dumps(list(values))))))
