"""Checks that a spooled body is JSON every reader understands the same way, before anything else reads it.

One streaming pass in the memory of the nesting depth: nesting beyond `MAX_DEPTH` (FHIR needs far less; deep
nesting makes JSON readers slow or crash), a key twice in one object (readers keep the first, the last or both), and a
`\\uD800`-`\\uDFFF` escape that is not half of a surrogate pair (no character: readers drop it or turn it into `?`).
It also says whether the body holds numbers beyond what the fast reader takes (integers past 64 bits, floats past
10^308): valid JSON, read exactly instead.
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import ijson

from mediator.openimis.reader import Problem

MAX_DEPTH = 64
MAX_EXPONENT = 4300  # as many digits as Python turns into an integer
INT64 = 1 << 63
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
WINDOW = 16 << 20  # bytes of the body scanned at a time (a multiple of the page size)


class NotWellFormed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True)
class Checked:
    big_numbers: bool  # numbers the fast reader cannot take: read the body with exact numbers


def check(path: Path) -> Checked:
    """Raise NotWellFormed naming the first fault (the record, the field); else say how to read the body."""
    check_surrogates(path)
    with path.open("rb") as file:
        try:
            return _check_structure(file)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            # The parser's own message quotes the body around the fault: it may hold personal data.
            raise NotWellFormed(Problem("body", "body", f"not valid JSON ({type(exc).__name__})")) from None
        except (SystemError, ValueError):  # an integer of more digits than Python converts (4300)
            raise NotWellFormed(Problem("body", "body", "a number of more than 4300 digits")) from None


def _place(path: list[Any]) -> tuple[str, str]:
    """(record, field) of a place in the document: `Bundle.entry[3]` and the path within that entry's resource."""
    if len(path) >= 2 and path[0] == "entry" and isinstance(path[1], int):
        inner = path[3:] if len(path) > 2 and path[2] == "resource" else path[2:]
        return f"Bundle.entry[{path[1]}]", _dotted(inner) or "resource"
    return "body", _dotted(path) or "body"


def _dotted(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{_shown(p)}" for p in path).lstrip(".")


def _shown(key: str) -> str:
    return key if len(key) <= 64 and key.isprintable() else "(a key)"


def _check_structure(file: Any) -> Checked:
    # Per open container: its place (key or index) and, for an object, the keys seen.
    path: list[Any] = []
    keys: list[set[str] | None] = []
    big = False
    for event, value in ijson.basic_parse(file, use_float=False):
        if event == "map_key":
            seen = keys[-1]
            if value in seen:  # type: ignore[operator]
                record, field = _place([*path[:-1], value])
                raise NotWellFormed(Problem(record, field, "appears twice in the same object"))
            seen.add(value)  # type: ignore[union-attr]
            path[-1] = value  # shown only if a fault is named (see _dotted)
            continue
        if keys and keys[-1] is None:  # a value in an array: its index
            path[-1] += 1
        if event == "start_map" or event == "start_array":
            if len(keys) >= MAX_DEPTH:
                record, field = _place(path)
                raise NotWellFormed(Problem(record, field, f"nested deeper than {MAX_DEPTH} levels"))
            keys.append(set() if event == "start_map" else None)
            path.append("" if event == "start_map" else -1)
        elif event == "end_map" or event == "end_array":
            keys.pop()
            path.pop()
        elif event == "number" and not big:
            if type(value) is int:
                big = not -INT64 <= value < INT64
            elif isinstance(value, Decimal) and value.is_finite():
                if abs(value.adjusted()) > MAX_EXPONENT:  # 1e100000000: thirteen bytes, beyond any reader's means
                    record, field = _place(path)
                    raise NotWellFormed(Problem(record, field, f"a number beyond 10^{MAX_EXPONENT}"))
                big = value.adjusted() >= 308
    return Checked(big)


def check_surrogates(path: Path) -> None:
    """A surrogate escape must be one of a high-low pair; found on the bytes (readers lose a lone one)."""
    if path.stat().st_size == 0:
        return
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for window in range(0, len(data), WINDOW):
            # A match starts in this window (it may end in the next); the pages read are let go after each
            # window, so a body of any size is checked in the memory of one window.
            for match in _SURROGATE_ESCAPE.finditer(data, window, window + WINDOW + 5):
                start = match.start()
                if start >= window + WINDOW or not _escapes(data, start):
                    continue  # `\\ud800` is the text "\ud800", not an escape
                paired = _is_pair(data, start) if _high(data, start) else start >= 6 and _is_pair(data, start - 6)
                if not paired:
                    text = f"\\u{data[start + 2 : start + 6].decode()} at byte {start} is half of a surrogate pair"
                    raise NotWellFormed(Problem("body", "body", text + ": not a character"))
            if hasattr(mmap, "MADV_DONTNEED"):
                data.madvise(mmap.MADV_DONTNEED, window, min(WINDOW, len(data) - window))


def _high(data: mmap.mmap, at: int) -> bool:
    """Whether the surrogate escape at `at` is a high one (\\uD800-\\uDBFF)."""
    return data[at + 3] in b"89abAB"


def _is_pair(data: mmap.mmap, at: int) -> bool:
    """Whether a high surrogate escape at `at` is followed by a low one."""
    found = _SURROGATE_ESCAPE.match(data, at)
    return found is not None and _escapes(data, at) and _high(data, at) and _LOW.match(data, at + 6) is not None


def _escapes(data: mmap.mmap, at: int) -> bool:
    """Whether the backslash at `at` starts an escape: an even number of backslashes before it."""
    run = 0
    while at - run - 1 >= 0 and data[at - run - 1] == 0x5C:
        run += 1
    return run % 2 == 0
