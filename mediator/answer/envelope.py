"""The application/json+openhim response a mediator gives the core, with one orchestration per outbound call.

All bodies of one transaction share a 15 MiB budget in the core; bodies here are cut well below it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

CONTENT_TYPE = "application/json+openhim"
STATUSES = ("Processing", "Successful", "Completed", "Completed with error(s)", "Failed")
MAX_BODY_CHARS = 256 * 1024
MAX_TOTAL_CHARS = 4 * 1024 * 1024
MIN_BODY_CHARS = 200  # with 10,000 calls still under 5 MiB of bodies


def iso(ts: datetime | None = None) -> str:
    ts = ts or datetime.now(UTC)
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cut(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: {len(text) - limit} more characters]"


@dataclass(frozen=True)
class Orchestration:
    """One outbound call as the OpenHIM transaction log shows it."""

    name: str
    method: str
    url: str
    request_body: str
    request_started: datetime
    status: int | None
    response_body: str
    response_finished: datetime
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self, body_limit: int = MAX_BODY_CHARS) -> dict[str, Any]:
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        doc: dict[str, Any] = {
            "name": self.name,
            "request": {
                "method": self.method,
                "host": parts.hostname or "",
                "port": str(port),
                "path": parts.path,
                "querystring": parts.query,
                "headers": self.request_headers,
                "body": cut(self.request_body, body_limit),
                "timestamp": iso(self.request_started),
            },
        }
        if self.status is not None:
            doc["response"] = {
                "status": self.status,
                "headers": self.response_headers,
                "body": cut(self.response_body, body_limit),
                "timestamp": iso(self.response_finished),
            }
        if self.error:
            doc["error"] = {"message": self.error}
        return doc


def mediator_response(
    urn: str,
    status: str,
    http_status: int,
    body: Any,
    orchestrations: list[Orchestration] = (),  # type: ignore[assignment]
    properties: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The envelope; `body` (any JSON value) becomes the client's response, as application/json."""
    if status not in STATUSES:
        raise ValueError(f"not an OpenHIM transaction status: {status!r}")
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    # Share the budget: the more calls, the less of each body is kept.
    per_body = max(MIN_BODY_CHARS, min(MAX_BODY_CHARS, MAX_TOTAL_CHARS // max(1, 2 * len(orchestrations))))
    doc: dict[str, Any] = {
        "x-mediator-urn": urn,
        "status": status,
        "response": {
            "status": http_status,
            "headers": {"content-type": "application/json"},
            "body": text,  # the caller keeps it small (it must stay valid JSON for the client)
            "timestamp": iso(),
        },
        "orchestrations": [o.to_json(per_body) for o in orchestrations],
        "properties": {k: str(v) for k, v in (properties or {}).items()},
    }
    if error:
        doc["error"] = {"message": error}
    return doc
