"""A throw-away PostgreSQL server for tests: initdb into a temporary folder, started on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.openhim_core import free_port, wait_for_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; tests on CI run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server(base: Path) -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database on a fresh server, stopped afterwards."""
    data, sockets = base / "pgdata", base / "pgsock"
    for folder in (data, sockets):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    subprocess.run(
        _as_postgres([_bin("initdb"), "-D", str(data), "-U", "journal", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    start(base, port)
    try:
        wait_for_port(port, 30)
        for _ in range(50):
            done = subprocess.run(
                _as_postgres([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "journal", "journal"]),
                capture_output=True,
            )
            if done.returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgresql://journal@127.0.0.1:{port}/journal"
    finally:
        stop(base)


def start(base: Path, port: int) -> None:
    """Start (again) the server of `postgres_server(base)` on its port."""
    options = f"-p {port} -k {base / 'pgsock'} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [_bin("pg_ctl"), "-D", str(base / "pgdata"), "-o", options, "-l", str(base / "pg.log"), "-w", "start"]
    subprocess.run(_as_postgres(pg_ctl), check=True, capture_output=True)


def stop(base: Path) -> None:
    """Stop the server of `postgres_server(base)` (its connections cut at once)."""
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(base / "pgdata"), "-m", "fast", "stop"]), capture_output=True
    )
