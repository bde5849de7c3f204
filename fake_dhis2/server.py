"""Runs a fake DHIS2 on loopback, in a thread (tests) or in the foreground (demo)."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server

from fake_dhis2.app import FakeDhis2, create_app


class RunningFake:
    def __init__(self, fake: FakeDhis2, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self.server: BaseWSGIServer = make_server(host, port, create_app(fake), threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-dhis2", daemon=True
        )

    def start(self) -> RunningFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
