"""Client of the OpenHIM core API for what a mediator needs: register, heartbeat, and config."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import requests

from mediator.openhim.auth import TokenAuth, make_auth
from mediator.openhim.errors import CoreAuthFailed, CoreRejected, CoreUnavailable, MediatorNotFound

log = logging.getLogger(__name__)

TIMEOUT = (5.0, 30.0)


class CoreClient:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        auth_mode: str = "basic",
        verify: bool | str = True,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth_mode = auth_mode
        self.session = session or requests.Session()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session-level setting.
        self.verify = verify
        self.auth = make_auth(auth_mode, username, password, self._fetch_salt)

    def _fetch_salt(self, username: str) -> str:
        resp = self._send("GET", f"/authenticate/{quote(username)}", auth=None)
        if resp.status_code == 404:
            raise CoreAuthFailed(f"the core has no token credentials for {username}")
        self._raise_for(resp)
        try:
            return str(resp.json()["salt"])
        except (ValueError, KeyError) as exc:
            raise CoreUnavailable("the core's /authenticate answer has no salt") from exc

    def _send(self, method: str, path: str, auth: Any = "default", **kwargs: Any) -> requests.Response:
        # One connection per request: core 4.0.5 fails a request that comes on a connection it has paused
        # ("Parse Error: Paused", HPE_PAUSED) and restarts its worker, dropping what else was in flight.
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        try:
            return self.session.request(
                method,
                self.url + path,
                auth=self.auth if auth == "default" else auth,
                timeout=TIMEOUT,
                verify=self.verify,
                headers=headers,
                **kwargs,
            )
        except requests.RequestException as exc:
            raise CoreUnavailable(f"{method} {path}: {type(exc).__name__}") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = self._send(method, path, **kwargs)
        if resp.status_code == 401 and isinstance(self.auth, TokenAuth):
            # The salt may have changed (password reset): fetch it again once.
            self.auth.forget()
            resp = self._send(method, path, **kwargs)
        self._raise_for(resp)
        return resp

    @staticmethod
    def _raise_for(resp: requests.Response) -> None:
        status = resp.status_code
        if status < 400:
            return
        text = resp.text[:500]
        if status in (401, 403):
            raise CoreAuthFailed(f"{status} from the core: check the OpenHIM user and that it is an admin")
        if status == 404:
            raise MediatorNotFound(text or "not found")
        if 400 <= status < 500:
            raise CoreRejected(f"{status}: {text}")
        raise CoreUnavailable(f"{status} from the core: {text}")

    def register(self, document: dict[str, Any]) -> None:
        """POST /mediators. The core answers 201 whether or not it replaced an older version."""
        self._call("POST", "/mediators", json=document)

    def heartbeat(self, urn: str, uptime: float, want_config: bool = False) -> dict[str, Any] | None:
        """Beat once; returns the console config when the core sent one (changed, or asked for)."""
        body: dict[str, Any] = {"uptime": uptime}
        if want_config:
            body["config"] = True
        resp = self._call("POST", f"/mediators/{quote(urn, safe='')}/heartbeat", json=body)
        text = resp.text.strip()
        if not text or text == "OK":
            return None
        try:
            config = json.loads(text)
        except ValueError:
            log.warning("heartbeat answer is not JSON; ignored")
            return None
        return config if isinstance(config, dict) else None

    def set_config(self, urn: str, config: dict[str, Any]) -> None:
        self._call("PUT", f"/mediators/{quote(urn, safe='')}/config", json=config)

    def get_mediator(self, urn: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/mediators/{quote(urn, safe='')}").json()
        return result

    def install_channels(self, urn: str, names: list[str] | None = None) -> None:
        """What the console's "install channels" button does: create the default channels."""
        self._call("POST", f"/mediators/{quote(urn, safe='')}/channels", json=names or [])

    def add_audit(self, event: dict[str, Any]) -> None:
        """Keep an ATNA audit event in the core's audit log (what the console's Audit Log shows)."""
        self._call("POST", "/audits", json=event)

    def update_transaction(self, transaction_id: str, update: dict[str, Any]) -> None:
        self._call("PUT", f"/transactions/{quote(transaction_id, safe='')}", json=update)
