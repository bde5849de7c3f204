"""The fast way through a body: its resources read one at a time with the standard library's JSON scanner, checked on
the way for what mediator.openimis.wellformed refuses, in the memory of one resource.

It takes only what is plainly well formed: a Bundle whose `resourceType` and `type` come before its entries, or a
single resource. At anything else (a key twice, nesting past MAX_DEPTH, a number a float cannot hold, bytes that are
no JSON, a Bundle in an unusual order) it raises Unusual, and the body is read the careful way (wellformed, then
ijson), which names what is wrong. The resources it gives are those the careful way gives.

A key twice in one object is found without a hook per object: every key is followed by one colon, and so the colons
of a resource's text, outside its strings, are its keys. The colons of the text are those of its keys and of its
strings; those of what was read again with orjson are those of the keys kept and of the same strings, unless a string
wrote a colon as an escape (then the text is read the careful way). Fewer means a key was dropped: it was there twice.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from mediator.openimis.wellformed import MAX_DEPTH

CHUNK = 1 << 20  # bytes read at a time
MAX_BUFFER = 16 << 20  # characters one value may take; a longer one is read the careful way (streamed)
NEAR_END = 16  # a scanner error this close to the end of what was read may be a value cut by the chunk
_SPACE = re.compile(r"[ \t\n\r]*")
MISSING = object()  # an entry without a resource


class Unusual(Exception):
    """Not plainly well formed: read the body the careful way."""


def _float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise Unusual  # past 10^308: the careful way reads it exactly
    return number


def _constant(name: str) -> Any:
    raise Unusual  # NaN, Infinity: not JSON


_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant, strict=True)


class _Text:
    """The body as text, decoded a chunk at a time; `at` is the reading position."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.at = 0
        self.eof = False

    def more(self) -> None:
        if self.eof:
            raise Unusual  # the body ends inside a value: not valid JSON
        chunk = self.file.read(max(CHUNK, len(self.buf) - self.at))  # a value longer than a chunk: doubled
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise Unusual from None
        self.eof = not chunk
        self.buf = self.buf[self.at :] + text
        self.at = 0
        if len(self.buf) > MAX_BUFFER:
            raise Unusual

    def skip_space(self) -> None:
        while True:
            self.at = _SPACE.match(self.buf, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.buf) or self.eof:
                return
            self.more()

    def peek(self) -> str:
        """The next character after white space ("" at the end of the body)."""
        self.skip_space()
        return self.buf[self.at] if self.at < len(self.buf) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise Unusual
        self.at += 1

    def value(self) -> tuple[Any, int, int]:
        """The next JSON value, and where its text starts and ends in `buf`."""
        self.skip_space()
        while True:
            start = self.at
            try:
                found, end = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as exc:
                if self.eof or not (exc.pos >= len(self.buf) - NEAR_END or exc.msg.startswith("Unterminated string")):
                    raise Unusual from None  # not JSON: the careful way says so
                found, end = MISSING, -1
            except (ValueError, RecursionError):  # an integer of more digits than Python converts; deep nesting
                raise Unusual from None
            if end != -1 and (end < len(self.buf) or self.eof):  # a number at the end may go on in the next chunk
                self.at = end
                return found, start, end
            self.more()


def _deepest(value: Any, level: int) -> int:
    """The nesting level of the deepest container in a value that sits at `level`."""
    deepest = level
    children = value.values() if type(value) is dict else value
    for child in children:
        if type(child) is dict or type(child) is list:
            found = _deepest(child, level + 1)
            if found > deepest:
                deepest = found
    return deepest


def _checked(text: _Text, found: Any, start: int, end: int, level: int) -> Any:
    """The value read at `level` (the root is 1), if it has no key twice and is not nested too deep."""
    if type(found) is not dict and type(found) is not list:
        return found
    buf = text.buf
    openers = buf.count("{", start, end) + buf.count("[", start, end)  # at least its containers
    if level + openers - 1 > MAX_DEPTH:
        try:
            if _deepest(found, level) > MAX_DEPTH:
                raise Unusual
        except RecursionError:
            raise Unusual from None
    colons = buf.count(":", start, end)
    if colons == 0:
        return found
    if buf.find("\\u003", start, end) != -1:  # a colon may be written as an escape: not counted here
        raise Unusual
    try:
        kept = orjson.dumps(found).count(b":")
    except orjson.JSONEncodeError:  # an integer past 64 bits
        raise Unusual from None
    if kept != colons:
        raise Unusual  # a key was there twice
    return found


def bundle_entries(path: Path, header_ok: Callable[[dict[str, Any]], bool]) -> Iterator[tuple[str, Any]]:
    """The (where, resource) pairs of a Bundle, as stream's careful reading gives them (MISSING for an entry without
    a resource), if `header_ok` takes what comes before the entries.

    Raises Unusual, also once entries were given, at anything it does not plainly take."""
    with path.open("rb") as file:
        text = _Text(file)
        text.expect("{")
        header: dict[str, Any] = {}
        while (key := _key(text, header)) != "entry":
            found, start, end = text.value()
            header[key] = _checked(text, found, start, end, 2)
            if text.peek() == "}":
                raise Unusual  # no entries, or a single resource: read the careful way, as a whole
            text.expect(",")
        if not header_ok(header):
            raise Unusual
        header["entry"] = None
        text.expect("[")
        if text.peek() == "]":
            raise Unusual  # an empty Bundle: refused the careful way
        position = 0
        while True:
            found, start, end = text.value()
            entry = _checked(text, found, start, end, 3)
            where = f"Bundle.entry[{position}]"
            yield where, entry["resource"] if type(entry) is dict and "resource" in entry else MISSING
            position += 1
            if text.peek() == "]":
                break
            text.expect(",")
        text.at += 1
        while text.peek() == ",":  # what follows the entries: read and checked, of no use
            text.at += 1
            key = _key(text, header)
            found, start, end = text.value()
            header[key] = _checked(text, found, start, end, 2)
        text.expect("}")
        if text.peek() != "":
            raise Unusual  # something after the document


def _key(text: _Text, seen: dict[str, Any]) -> str:
    if text.peek() != '"':
        raise Unusual
    key, _, _ = text.value()
    if key in seen:
        raise Unusual
    text.expect(":")
    return str(key)
