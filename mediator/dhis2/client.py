"""A small DHIS2 HTTP client: one session (DHIS2 limits sessions per user), typed errors, and a record of every
exchange so the caller can show each DHIS2 call in its own log."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2NotConfigured, Dhis2Unavailable

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Exchange:
    """One request to DHIS2 and what came back (status None when no answer came)."""

    method: str
    url: str
    request_body: Any
    started: datetime
    finished: datetime
    status: int | None
    response_body: Any
    error: str | None = None


class ApiTokenAuth(AuthBase):
    """DHIS2 personal access tokens (2.37+): `Authorization: ApiToken d2pat_...`."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"ApiToken {self.token}"
        return r


def make_auth(mode: str, username: str, password: str, token: str) -> AuthBase:
    if mode == "token":
        if not token:
            raise Dhis2NotConfigured("dhis2_token is not set")
        return ApiTokenAuth(token)
    if not username or not password:
        raise Dhis2NotConfigured("dhis2_username and dhis2_password are not set")
    return HTTPBasicAuth(username, password)


class Dhis2Client:
    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        verify: bool | str = True,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        if not base_url:
            raise Dhis2NotConfigured("dhis2_url is not set")
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.auth = auth
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session-level setting.
        self.verify = verify
        self.session.headers["Accept"] = "application/json"
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self.on_exchange = on_exchange

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, parsed JSON body or text) for any answer below 500 except 401/403.

        DHIS2 answers 409 with a report worth reading, so only the caller knows what a 4xx means.
        """
        url = self.base_url + path
        started = datetime.now(UTC)
        try:
            resp = self.session.request(method, url, params=params, json=body, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            self._record(method, url, params, body, started, None, None, type(exc).__name__)
            raise Dhis2Unavailable(f"{method} {path}: {type(exc).__name__}") from exc
        try:
            answer: Any = resp.json()
        except ValueError:
            answer = resp.text
        self._record(method, url, params, body, started, resp.status_code, answer, None)
        if resp.status_code in (401, 403):
            raise Dhis2AuthFailed(f"{method} {path}: DHIS2 answered {resp.status_code}")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Dhis2Unavailable(f"{method} {path}: DHIS2 answered {resp.status_code}")
        return resp.status_code, answer

    def _record(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        body: Any,
        started: datetime,
        status: int | None,
        answer: Any,
        error: str | None,
    ) -> None:
        if self.on_exchange is None:
            return
        full_url = requests.Request(method, url, params=params).prepare().url or url
        self.on_exchange(Exchange(method, full_url, body, started, datetime.now(UTC), status, answer, error))

    def system_info(self) -> dict[str, Any]:
        status, body = self.request("GET", "/api/system/info")
        return body if isinstance(body, dict) else {}


def body_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
