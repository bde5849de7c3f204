"""Authentication to the OpenHIM core API: Basic (cores 5.1+, default from 7.1) and the legacy token scheme."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from requests.auth import AuthBase, HTTPBasicAuth


def sha512_hex(text: str) -> str:
    return hashlib.sha512(text.encode("utf-8")).hexdigest()


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a Z, the form the core compares against its clock."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class TokenAuth(AuthBase):
    """The legacy scheme: fetch the user's salt once, then sign every request with a fresh salt and time."""

    def __init__(self, username: str, password: str, fetch_salt: Callable[[str], str]) -> None:
        self.username = username
        self._password = password
        self._fetch_salt = fetch_salt
        self._passhash: str | None = None
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop the cached password hash, e.g. after the core answered 401 (the user's salt may have changed)."""
        with self._lock:
            self._passhash = None

    def headers(self, now: datetime | None = None, salt: str | None = None) -> dict[str, str]:
        with self._lock:
            if self._passhash is None:
                self._passhash = sha512_hex(self._fetch_salt(self.username) + self._password)
            passhash = self._passhash
        ts = utc_timestamp(now)
        salt = salt or str(uuid.uuid4())
        return {
            "auth-username": self.username,
            "auth-ts": ts,
            "auth-salt": salt,
            "auth-token": sha512_hex(passhash + salt + ts),
        }

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.update(self.headers())
        return r


def make_auth(mode: str, username: str, password: str, fetch_salt: Callable[[str], str]) -> AuthBase:
    if mode == "token":
        return TokenAuth(username, password, fetch_salt)
    return HTTPBasicAuth(username, password)
