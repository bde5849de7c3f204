"""Deterministic DHIS2 UIDs: the same openIMIS record always maps to the same UID, so a resend updates it."""

from __future__ import annotations

import hashlib
import re
import string

LETTERS = string.ascii_letters
ALPHANUMERIC = string.digits + string.ascii_letters
UID_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")


def is_uid(value: str) -> bool:
    return bool(UID_PATTERN.match(value))


def derive_uid(kind: str, key: str, namespace: str = "openimis") -> str:
    """11 characters, a letter first, from a hash of the namespace, the kind of object and the openIMIS key.

    The kind keeps a tracked entity and its enrollment apart although both come from one insuree.
    """
    digest = hashlib.sha256(f"{namespace}\x1f{kind}\x1f{key}".encode()).digest()
    number = int.from_bytes(digest, "big")
    number, first = divmod(number, len(LETTERS))
    chars = [LETTERS[first]]
    for _ in range(10):
        number, rest = divmod(number, len(ALPHANUMERIC))
        chars.append(ALPHANUMERIC[rest])
    return "".join(chars)


def org_unit_uid(location_key: str) -> str:
    """The org unit of an openIMIS location or health facility (the metadata channel creates it with this UID)."""
    return derive_uid("orgUnit", location_key)
