"""Keeps personal data out of what the mediator shows others (OpenHIM transaction bodies, logs).

DHIS2 payloads keep their structure (which attribute, which object) but lose every value; DHIS2 messages keep the
UIDs the mediator sent but lose any other quoted value, since DHIS2 quotes the offending value in backticks.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from mediator.mapping.uids import is_uid

REDACTED = "[redacted]"
_QUOTED = re.compile(r"`([^`]*)`")
_VALUE_KEYS = frozenset({"value", "storedBy"})
_MESSAGE_KEYS = frozenset({"message", "description"})


def redact_message(text: str, known_uids: Collection[str]) -> str:
    """Keep quoted values that are UIDs the mediator itself sent; a name can look like a UID, so no others."""
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) in known_uids else f"`{REDACTED}`", text)


def uids_in(obj: Any) -> set[str]:
    """The UIDs of a DHIS2 payload (object and reference ids, never values)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _VALUE_KEYS:
                continue
            if isinstance(value, str) and is_uid(value):
                found.add(value)
            else:
                found |= uids_in(value)
    elif isinstance(obj, list):
        for value in obj:
            found |= uids_in(value)
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
