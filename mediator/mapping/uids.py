"""Deterministic DHIS2 UIDs: the same openIMIS record always maps to the same UID, so a resend updates it."""

from __future__ import annotations

import hashlib
import re
import string
from functools import lru_cache

LETTERS = string.ascii_letters
ALPHANUMERIC = string.digits + string.ascii_letters
UID_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
_UID_SPACE = len(LETTERS) * len(ALPHANUMERIC) ** 10


def is_uid(value: str) -> bool:
    return bool(UID_PATTERN.match(value))


@lru_cache(maxsize=1 << 16)  # a push names the same villages and families over and over
def derive_uid(kind: str, key: str, namespace: str = "openimis") -> str:
    """11 characters, a letter first, from a hash of the namespace, the kind of object and the openIMIS key.

    The kind keeps a tracked entity and its enrollment apart although both come from one insuree.
    """
    digest = hashlib.sha256(f"{namespace}\x1f{kind}\x1f{key}".encode()).digest()
    # The 11 characters are the lowest digits of the hash in mixed radix (52, then 62): they depend on it only
    # modulo 52 * 62^10, so the digits are taken from that small number instead of the 256-bit one.
    number = int.from_bytes(digest, "big") % _UID_SPACE
    number, first = divmod(number, len(LETTERS))
    chars = [LETTERS[first]]
    for _ in range(10):
        number, rest = divmod(number, len(ALPHANUMERIC))
        chars.append(ALPHANUMERIC[rest])
    return "".join(chars)


# The scheme of openIMIS's own DHIS2 module, for implementers who migrate from it: each pair of hex digits of the
# UUID (an MD5 of the key when it is no UUID) gives one of 64 characters; the first is kept a letter.
_ETL_CHARS = string.digits + string.ascii_uppercase + string.ascii_lowercase + "AB"
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
SCHEMES = ("mediator", "openimis-etl")


def openimis_etl_uid(key: str) -> str:
    digits = key.replace("-", "")
    if not _HEX32.match(digits):
        digits = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    chars = []
    for i in range(11):
        index = int(digits[2 * i], 16) * 4 + int(digits[2 * i + 1], 16) // 4
        if i == 0 and index < 10:
            index += 10
        chars.append(_ETL_CHARS[index])
    return "".join(chars)


def org_unit_uid(location_key: str, scheme: str = "mediator") -> str:
    """The org unit of an openIMIS location or health facility (the metadata channel creates it with this UID)."""
    return openimis_etl_uid(location_key) if scheme == "openimis-etl" else derive_uid("orgUnit", location_key)


def tracked_entity_uid(insuree_key: str, scheme: str = "mediator") -> str:
    """The tracked entity of an insuree (openIMIS's own module used the same scheme for these and org units)."""
    return openimis_etl_uid(insuree_key) if scheme == "openimis-etl" else derive_uid("trackedEntity", insuree_key)
