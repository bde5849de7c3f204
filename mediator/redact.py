"""Keeps personal data out of what the mediator shows others (OpenHIM transaction bodies, logs).

DHIS2 payloads keep their structure (which attribute, which object) but lose every value; DHIS2 messages keep
UIDs but lose any other quoted value, since DHIS2 quotes the offending value in backticks.
"""

from __future__ import annotations

import re
from typing import Any

from mediator.mapping.uids import is_uid

REDACTED = "[redacted]"
_QUOTED = re.compile(r"`([^`]*)`")
_VALUE_KEYS = frozenset({"value", "storedBy"})
_MESSAGE_KEYS = frozenset({"message", "description"})


def redact_message(text: str) -> str:
    return _QUOTED.sub(lambda m: m.group(0) if is_uid(m.group(1)) else f"`{REDACTED}`", text)


def redact(obj: Any) -> Any:
    """A copy of a DHIS2 request or answer with attribute/data values and quoted message values hidden."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in _VALUE_KEYS and value is not None and not isinstance(value, (dict, list)):
                out[key] = REDACTED
            elif key in _MESSAGE_KEYS and isinstance(value, str):
                out[key] = redact_message(value)
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj
