"""A small DHIS2 HTTP client: one session per DHIS2 user (DHIS2 limits sessions per user), typed errors, and a
record of every exchange so the caller can show each DHIS2 call in its own log."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from mediator.backoff import full_jitter, retry_after
from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2NotConfigured, Dhis2Unavailable
from mediator.ops import metrics

CONNECT_TIMEOUT = 10.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
ACCEPT = {"Accept": "application/json"}
SENDING = {**ACCEPT, "Content-Type": "application/json"}


@dataclass(frozen=True)
class RetryPolicy:
    """Connection errors and 429/502/503/504 are tried again, with exponential backoff and full jitter;
    a 429 or 503 with Retry-After waits as long as DHIS2 asks (within `cap`). A 4xx is never retried."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, attempt: int, asked: str | None = None) -> float:
        seconds = retry_after(asked)
        if seconds is not None:
            return min(self.cap, seconds)
        return full_jitter(attempt, self.base, self.cap)


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


def credentials_key(mode: str, username: str, password: str, token: str) -> str:
    """Names the DHIS2 credentials a session belongs to, without holding them: two users, or one user before and
    after a password change, never share a session (nor DHIS2's JSESSIONID cookie in it)."""
    secret = token if mode == "token" else f"{username}\x1f{password}"
    return hashlib.sha256(f"{mode}\x1f{secret}".encode()).hexdigest()


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
        retry: RetryPolicy | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        if not base_url:
            raise Dhis2NotConfigured("dhis2_url is not set")
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        # Auth goes with each request, never onto the session: a session given by the caller may be in use by
        # another thread, and must stay its user's alone.
        self.auth = auth
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session-level setting.
        self.verify = verify
        self.timeout = (connect_timeout, timeout)
        self.on_exchange = on_exchange
        self.retry = retry or RetryPolicy()

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        raw: tuple[bytes, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request (again, while DHIS2 is briefly unavailable); return (status, parsed JSON or text) for any
        answer below 500 except 401/403.

        DHIS2 answers 409 with a report worth reading, so only the caller knows what a 4xx means. Every attempt is
        recorded as an exchange. Requests are safe to repeat: the mediator's UIDs are deterministic and it imports
        with CREATE_AND_UPDATE. `raw` is a body that is not JSON, with its content type.
        """
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                status, answer, headers = self._send(method, path, params, body, raw)
            except Dhis2Unavailable:
                if last:
                    raise
                metrics.DHIS2_RETRIES.labels(metrics.endpoint(path)).inc()
                self.retry.sleep(self.retry.wait(attempt))
                continue
            if status in RETRY_STATUSES and not last:
                metrics.DHIS2_RETRIES.labels(metrics.endpoint(path)).inc()
                self.retry.sleep(self.retry.wait(attempt, headers.get("Retry-After")))
                continue
            if status in (401, 403):
                raise Dhis2AuthFailed(f"{method} {path}: DHIS2 answered {status}")
            if status >= 500 or status == 429:
                raise Dhis2Unavailable(f"{method} {path}: DHIS2 answered {status}")
            return status, answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    def request_raw(
        self, method: str, path: str, params: dict[str, str] | None, data: bytes, content_type: str
    ) -> tuple[int, Any]:
        """`request` with a body that is not JSON (ADX XML)."""
        return self.request(method, path, params=params, raw=(data, content_type))

    def _send(
        self, method: str, path: str, params: dict[str, str] | None, body: Any, raw: tuple[bytes, str] | None = None
    ) -> tuple[int, Any, Mapping[str, str]]:
        url = self.base_url + path
        started = datetime.now(UTC)
        data: bytes | None
        if raw is not None:
            data, headers = raw[0], {**ACCEPT, "Content-Type": raw[1]}
            body = raw[0].decode("utf-8", "replace")  # recorded as the text it is
        else:
            data = None if body is None else orjson.dumps(body)
            headers = ACCEPT if body is None else SENDING
        clock = time.perf_counter()
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                data=data,
                auth=self.auth,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as exc:
            metrics.DHIS2_SECONDS.labels(method, metrics.endpoint(path), "error").observe(time.perf_counter() - clock)
            self._record(method, url, params, body, started, None, None, type(exc).__name__)
            raise Dhis2Unavailable(f"{method} {path}: {type(exc).__name__}") from exc
        elapsed = time.perf_counter() - clock
        metrics.DHIS2_SECONDS.labels(method, metrics.endpoint(path), str(resp.status_code)).observe(elapsed)
        answer = _answer(resp)
        self._record(method, url, params, body, started, resp.status_code, answer, None)
        return resp.status_code, answer, resp.headers

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


def _answer(resp: requests.Response) -> Any:
    """DHIS2's answer as JSON, or as text when it is not JSON."""
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return resp.json()  # what orjson does not read (integers past 64 bits)
    except ValueError:
        return resp.text
