"""Settings that follow the OpenHIM console while the mediator runs.

The process that heartbeats writes the console config to a file in the state directory; every server worker
re-reads it when the file changes, so all workers apply a console change without a restart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediator.config.settings import Settings, SettingsError, insecure_warnings, with_console, without_env_only

log = logging.getLogger(__name__)

CONSOLE_FILE = "console-config.json"


class LiveSettings:
    def __init__(self, base: Settings, env: Mapping[str, str] | None = None) -> None:
        self._base = base
        self._env = env
        self._path = Path(base.state_dir) / CONSOLE_FILE
        self._lock = threading.Lock()
        self._current = base
        self._seen: tuple[int, int, int] | None = None
        self.current()

    @property
    def base(self) -> Settings:
        return self._base

    def current(self) -> Settings:
        """The settings in force now; cheap enough to call on every request (one stat call)."""
        try:
            st = self._path.stat()
            # os.replace gives every published file a new inode, so a same-size rewrite is still seen.
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._seen:
            return self._current
        with self._lock:
            if stamp != self._seen:
                self._current = self._load() if stamp else self._base
                self._seen = stamp
        return self._current

    def _load(self) -> Settings:
        try:
            console = json.loads(self._path.read_text(encoding="utf-8"))
            return with_console(self._base, console, self._env)
        except (OSError, ValueError, SettingsError) as exc:
            log.error("ignoring stored console config: %s", exc)
            return self._current

    def preview(self, console: Mapping[str, Any]) -> Settings:
        """The settings a console config would put in force, stored nowhere (SettingsError when it cannot)."""
        return with_console(self._base, without_env_only(console), self._env)

    def publish(self, console: Mapping[str, Any]) -> Settings:
        """Validate a config returned by the OpenHIM core, store it for every worker, and return it.

        Raises SettingsError (and keeps the settings in force) when the config cannot be used: a value that is not
        valid, or a DHIS2 URL the environment does not allow its credentials to go to. What the console may not set
        (secrets an older registration had there) is left out, with a warning, and never stored.
        """
        console = without_env_only(console)
        fresh = with_console(self._base, console, self._env)
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(console, fh)
        os.replace(tmp, self._path)
        for warning in insecure_warnings(fresh):
            log.warning("%s", warning)
        return self.current()
