"""A client of openIMIS's FHIR R4 API (api_fhir_r4): JWT login and renewal, search pages, reads by id.

It knows the API's own ways: the token comes from `POST login/` and lasts a day; a user who never logged in through
GraphQL is refused with 401; `next` links are percent-encoded as a whole; one bad row makes a whole search page
answer 500, while the other rows can still be read one by one.

Errors, from the root:

    OpenImisError
    ├── OpenImisUnavailable   not reachable, timed out, or 502/503/504 after retries: try again later
    ├── OpenImisRefused       401/403: the user, its password, or its first GraphQL login
    └── OpenImisFailed        any other answer that is not a Bundle or resource (a 500 of one bad row, a 404)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mediator.errors import MediatorError

CONNECT_TIMEOUT = 10.0
RENEW_BEFORE = 300.0  # seconds before the token expires that a new one is asked for


class OpenImisError(MediatorError):
    """openIMIS did not give an answer the mediator can use."""

    http_status = 502
    summary = "openIMIS could not answer"


class OpenImisNotConfigured(OpenImisError):
    """No openIMIS to pull from: MEDIATOR_OPENIMIS_URL (and its user) are not set."""

    http_status = 503
    summary = "openIMIS is not configured: set MEDIATOR_OPENIMIS_URL, _USERNAME and _PASSWORD"


class OpenImisUnavailable(OpenImisError):
    """openIMIS could not be reached, timed out, or answered 502/503/504: the same request may succeed later."""

    fhir_code = "transient"
    retryable = True
    summary = "openIMIS is not available"


class OpenImisRefused(OpenImisError):
    """openIMIS refused the user (401/403)."""

    fhir_code = "security"
    summary = "openIMIS refused the mediator's user"


class OpenImisFailed(OpenImisError):
    """openIMIS answered with an error for this request (a 500 caused by one bad row, a 404...)."""

    summary = "openIMIS answered with an error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Page:
    """One search page: its resources, the link to the next page (decoded), and the total openIMIS counts."""

    resources: list[dict[str, Any]]
    next_url: str | None
    total: int | None


@dataclass
class _Token:
    value: str = ""
    expires: float = 0.0


def _outcome_text(response: requests.Response) -> str:
    """The diagnostics of an OperationOutcome answer, short, never the whole body."""
    try:
        doc = response.json()
        issues = doc.get("issue") or []
        texts = [(i.get("details") or {}).get("text") or i.get("diagnostics") or "" for i in issues]
        text = "; ".join(t for t in texts if t)
    except (ValueError, AttributeError):
        text = ""
    return " ".join(text.split())[:300] or f"HTTP {response.status_code}"


def _expiry(token: str, given: Any) -> float:
    """When the token expires: the `exp` openIMIS gave with it, else the JWT's own claim, else in an hour."""
    if isinstance(given, int | float):
        return float(given)
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + 3600


def _server_time(response: requests.Response) -> float | None:
    stamp = response.headers.get("Date")
    if not stamp:
        return None
    try:
        return parsedate_to_datetime(stamp).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass
class FhirApi:
    """`base_url` is the FHIR base (…/api/api_fhir_r4/). `session` may be given (tests, connection reuse)."""

    base_url: str
    username: str
    password: str = field(repr=False)
    verify: bool | str = True
    timeout: float = 120.0
    session: requests.Session | None = None
    clock: Callable[[], float] = time.time
    retries: int = 3
    _token: _Token = field(default_factory=_Token, repr=False)
    clock_offset: float = 0.0  # openIMIS's clock (its Date header) minus ours

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/") + "/"
        if self.session is None:
            self.session = requests.Session()
            retry = Retry(
                total=self.retries,
                connect=self.retries,
                read=0,  # a read timeout is not repeated here: openIMIS may still be working on it
                status=self.retries,
                backoff_factor=1.0,
                status_forcelist=(502, 503, 504),
                allowed_methods=frozenset({"GET"}),  # a POST (a Subscription) is never sent twice
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            adapter = HTTPAdapter(max_retries=retry)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    # -- authentication ---------------------------------------------------------------------------------------

    def login(self) -> None:
        doc = self._send(
            "POST",
            urljoin(self.base_url, "login/"),
            json={"username": self.username, "password": self.password},
            auth=False,
        )
        token = doc.get("token") if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token:
            raise OpenImisFailed("openIMIS login answered without a token")
        self._token = _Token(token, _expiry(token, doc.get("exp")))

    def _authorization(self) -> dict[str, str]:
        if not self._token.value or self._token.expires - self.clock() < RENEW_BEFORE:
            self.login()
        return {"Authorization": f"Bearer {self._token.value}"}

    # -- requests ---------------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> Any:
        assert self.session is not None
        for attempt in (1, 2):
            headers = {"Accept": "application/fhir+json, application/json", **(self._authorization() if auth else {})}
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=(CONNECT_TIMEOUT, self.timeout), verify=self.verify, **kwargs
                )
            except requests.RequestException as exc:
                raise OpenImisUnavailable(f"openIMIS not reachable at {_origin(url)}: {type(exc).__name__}") from exc
            stamp = _server_time(response)
            if stamp is not None:
                self.clock_offset = stamp - self.clock()
            if response.status_code == 401 and auth and attempt == 1:
                self._token = _Token()  # expired or revoked early: log in once more
                continue
            return self._answer(response, url)
        raise AssertionError("unreachable")

    def _answer(self, response: requests.Response, url: str) -> Any:
        status = response.status_code
        if status in (401, 403):
            hint = (
                " (a user that never logged in to openIMIS is refused by its FHIR API until it has logged in once "
                "through GraphQL: log in once in the openIMIS web application, or run the tokenAuth mutation)"
                if status == 401
                else ""
            )
            raise OpenImisRefused(
                f"openIMIS refused user {self.username!r} (HTTP {status}: {_outcome_text(response)}){hint}"
            )
        if status in (502, 503, 504):
            raise OpenImisUnavailable(f"openIMIS answered HTTP {status} at {_origin(url)}")
        if status == 204:
            return {}
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if status >= 400 or not isinstance(doc, dict):
            raise OpenImisFailed(f"openIMIS answered HTTP {status}: {_outcome_text(response)}", status)
        return doc

    def search(self, resource_type: str, params: Mapping[str, str] | None = None, url: str | None = None) -> Page:
        """One page of a search: `url` (a `next` link) or the resource type with its parameters."""
        target = url or urljoin(self.base_url, f"{resource_type}/")
        doc = self._send("GET", target, params=None if url else dict(params or {}))
        if doc.get("resourceType") != "Bundle":
            raise OpenImisFailed(f"openIMIS answered a {doc.get('resourceType')!s} where a Bundle was expected")
        resources = [
            e["resource"] for e in doc.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
        next_url = next((link.get("url") for link in doc.get("link") or [] if link.get("relation") == "next"), None)
        total = doc.get("total")
        return Page(resources, self._follow(next_url), total if isinstance(total, int) else None)

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return dict(self._send("GET", urljoin(self.base_url, f"{resource_type}/{resource_id}/")))

    def post(self, resource_type: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", urljoin(self.base_url, f"{resource_type}/"), json=dict(resource)))

    def delete(self, resource_type: str, resource_id: str) -> None:
        self._send("DELETE", urljoin(self.base_url, f"{resource_type}/{resource_id}/"))

    def server_now(self) -> float:
        """openIMIS's clock, as its last answer told it (seconds since the epoch)."""
        return self.clock() + self.clock_offset

    def _follow(self, link: str | None) -> str | None:
        """openIMIS percent-encodes its links as a whole (`http%3A%2F%2F…`); a link is followed only to openIMIS."""
        if not link:
            return None
        decoded = unquote(link) if "://" not in link else link
        if _origin(decoded) != _origin(self.base_url):
            # Links name the host openIMIS thinks it has (behind a proxy, another one): keep our own origin.
            parts = urlsplit(decoded)
            decoded = urljoin(self.base_url, parts.path + (f"?{parts.query}" if parts.query else ""))
        return decoded


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
