"""A real openIMIS 24.04 backend for tests (../shared/openimis-local: its FHIR R4 API on the demo database), what its
API serves counted independently of the mediator, and a proxy in front of it that can go down like openIMIS does."""

from __future__ import annotations

import http.server
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.e2e.openhim_core import free_port

RECIPE = Path(__file__).resolve().parents[1].parent / "shared" / "openimis-local"
# Outside the checkout and /root: the recipe's PostgreSQL runs as user postgres; kept between runs for its venv.
BASE = Path(tempfile.gettempdir()) / "mediator-tests-openimis"
USER, PASSWORD = "Admin", "admin123"
_asked = 0


def available() -> str | None:
    """Why a real openIMIS cannot run here, or None."""
    if not (RECIPE / "start.sh").is_file():
        return f"{RECIPE} is absent: the real openIMIS backend cannot be started"
    return None


@dataclass(frozen=True)
class OpenImis:
    url: str  # FHIR R4 base

    def session(self) -> requests.Session:
        session = requests.Session()
        token = session.post(self.url + "login/", json={"username": USER, "password": PASSWORD}, timeout=60)
        token.raise_for_status()
        session.headers["Authorization"] = f"Bearer {token.json()['token']}"
        return session


@contextmanager
def openimis_server() -> Iterator[OpenImis]:
    """Start the recipe's openIMIS on free loopback ports with the demo database restored afresh; stop it after."""
    BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(BASE, 0o755)  # noqa: S103 (the recipe's PostgreSQL runs as another user and must reach it)
    http_port, pg_port = free_port(), free_port()
    env = {
        **os.environ,
        "BASE": str(BASE),
        "OI_HTTP_PORT": str(http_port),
        "OI_PG_PORT": str(pg_port),
        "OI_PATCH_SUBSCRIPTIONS": "1",
    }
    subprocess.run([str(RECIPE / "stop.sh")], env=env, cwd=BASE, capture_output=True, timeout=120)
    (BASE / ".db_ready").unlink(missing_ok=True)  # the demo database as released, whatever an earlier run did
    started = subprocess.run(
        [str(RECIPE / "start.sh")], env=env, cwd=BASE, capture_output=True, text=True, timeout=1200
    )
    if started.returncode != 0:
        raise RuntimeError(f"openIMIS did not start:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    try:
        yield OpenImis(f"http://127.0.0.1:{http_port}/api/api_fhir_r4/")
    finally:
        subprocess.run([str(RECIPE / "stop.sh")], env=env, cwd=BASE, capture_output=True, timeout=120)


def served(openimis: OpenImis) -> dict[str, list[dict[str, Any]]]:
    """Every resource openIMIS's API serves, by feed, read the plain way (one large page; Claims one by one where a
    page fails, and by the ids their ClaimResponses give)."""
    session = openimis.session()
    global _asked
    _asked += 1
    # openIMIS caches a search's count for an hour and cuts answers to it: a filter of this call's own is fresh.
    fresh = {
        "_lastUpdated": "lt" + (datetime.now(UTC) + timedelta(days=1, seconds=_asked)).strftime("%Y-%m-%dT%H:%M:%S")
    }

    def search(path: str, **params: str) -> list[dict[str, Any]]:
        if path != "Organization/":  # which takes no _lastUpdated
            params = {**fresh, **params}
        answer = session.get(openimis.url + path, params={"_count": "100000", **params}, timeout=300)
        answer.raise_for_status()
        return [e["resource"] for e in answer.json().get("entry") or []]

    found = {
        "areas": search("Location/"),
        "facilities": search("Location/", physicalType="si"),
        "organizations": search("Organization/", type="prov"),
        "products": search("InsurancePlan/"),
        "items": search("Medication/"),
        "services": search("ActivityDefinition/"),
        "insurees": search("Patient/"),
        "families": search("Group/"),
        "coverages": search("Coverage/"),
        "contracts": search("Contract/"),
        "reviews": search("ClaimResponse/"),
    }
    claims = {}
    for review in found["reviews"]:
        claim_id = review["request"]["reference"].rsplit("/", 1)[-1]
        answer = session.get(f"{openimis.url}Claim/{claim_id}/", timeout=60)
        if answer.ok:
            claims[claim_id] = answer.json()
    for number in range(1, 10000):
        page = {**fresh, "_count": "1", "page-offset": str(number)}
        answer = session.get(openimis.url + "Claim/", params=page, timeout=60)
        if answer.status_code == 404:
            break
        if answer.ok:
            for entry in answer.json().get("entry") or []:
                claims[entry["resource"]["id"]] = entry["resource"]
    found["claims"] = list(claims.values())
    return found


class Proxy:
    """An HTTP proxy in front of openIMIS; `down()` makes it drop every request unanswered, as a stopped openIMIS
    behind a load balancer does, and `fail_after(n)` does so from the n-th request on."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.requests = 0
        self._fail_from: int | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.requests += 1
                    failing = proxy._fail_from is not None and proxy.requests >= proxy._fail_from
                if failing:
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(
                    self.command, proxy.upstream + self.path, headers=headers, data=body, timeout=300
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = _forward

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}{parts.path}"

    def fail_after(self, count: int) -> None:
        with self._lock:
            self._fail_from = self.requests + count

    def down(self) -> None:
        self.fail_after(0)

    def up(self) -> None:
        with self._lock:
            self._fail_from = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
