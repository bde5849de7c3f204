"""Pseudonyms for identifiers that leave openIMIS: a keyed HMAC, which nobody can reverse without the key."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: str, value: str, purpose: str) -> str:
    """32 hex characters; `purpose` keeps pseudonyms of different kinds of number apart."""
    mac = hmac.new(key.encode(), f"{purpose}\x1f{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]
