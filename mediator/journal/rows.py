"""Helpers of the journal's queries: rows an UPDATE touched, and lists cut to what one IN (...) may hold."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from sqlalchemy import CursorResult


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
