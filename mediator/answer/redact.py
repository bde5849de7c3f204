"""Keeps personal data out of what the mediator shows others (OpenHIM transaction bodies, logs).

DHIS2 payloads keep their structure (which attribute, which object) but lose every value; DHIS2 messages keep the
UIDs the mediator sent but lose any other quoted value, since DHIS2 quotes the offending value in backticks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from functools import cache
from typing import Any

import orjson

from mediator.mapping.uids import is_uid

REDACTED = "[redacted]"
_QUOTED = re.compile(r"`([^`]*)`")
_VALUE_KEYS = frozenset({"value", "storedBy"})
_MESSAGE_KEYS = frozenset({"message", "description"})


def redact_message(text: str, known_uids: Collection[str]) -> str:
    """Keep quoted values that are UIDs the mediator itself sent; a name can look like a UID, so no others."""
    if "`" not in text:
        return text
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) in known_uids else f"`{REDACTED}`", text)


def uids_in(obj: Any) -> set[str]:
    """The UIDs of a DHIS2 payload (object and reference ids, never values)."""
    found: set[str] = set()
    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in _VALUE_KEYS:
                    continue
                if isinstance(value, str):
                    if is_uid(value):
                        found.add(value)
                elif isinstance(value, (dict, list)):
                    todo.append(value)
        elif isinstance(item, list):
            todo.extend(v for v in item if isinstance(v, (dict, list)))
    return found


def redact(obj: Any, known_uids: Collection[str]) -> Any:
    """A copy of a DHIS2 request or answer with attribute/data values and quoted message values hidden."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in _VALUE_KEYS and value is not None and not isinstance(value, (dict, list)):
                out[key] = REDACTED
            elif key in _MESSAGE_KEYS and isinstance(value, str):
                out[key] = redact_message(value, known_uids)
            else:
                out[key] = redact(value, known_uids)
        return out
    if isinstance(obj, list):
        return [redact(v, known_uids) for v in obj]
    if isinstance(obj, str) and known_uids is not None:
        return redact_message(obj, known_uids)
    return obj


_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_VALUE_IN_JSON = re.compile(r'"(value|storedBy)":(?:' + _JSON_STRING + r"|-?\d[\d.eE+-]*|true|false)")
_QUOTING_STRING = re.compile(r'"(?:[^"\\`]|\\.)*`(?:[^"\\]|\\.)*"')


def redacted_json(obj: Any, known_uids: Callable[[], Collection[str]]) -> str:
    """`redact(obj)` as compact JSON text, made on the text: what a payload of thousands of records costs is two
    regular expression passes. `known_uids` is asked only when a string quotes a value (DHIS2's messages)."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return redact_message(obj, known_uids()) if "`" in obj else obj
    try:
        text = orjson.dumps(obj).decode()
    except orjson.JSONEncodeError:  # what orjson does not write (integers past 64 bits): the slow way
        return json.dumps(redact(obj, known_uids()), separators=(",", ":"), ensure_ascii=False)
    text = _VALUE_IN_JSON.sub(lambda m: f'"{m.group(1)}":"{REDACTED}"', text)
    if "`" not in text:
        return text
    known = cache(known_uids)

    def unquote(match: re.Match[str]) -> str:
        return orjson.dumps(redact_message(orjson.loads(match.group(0)), known())).decode()

    return _QUOTING_STRING.sub(unquote, text)
