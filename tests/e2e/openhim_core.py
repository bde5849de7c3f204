"""A real OpenHIM core on loopback for end-to-end tests: core 4.0.5 (the npm registry's only release) on
SecantusDB, installed on first use into .openhim/ (or $OPENHIM_E2E_HOME) and started on free ports.

Run `python -m tests.e2e.openhim_core` to start one by hand (Ctrl-C stops it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CORE_PACKAGE = "openhim-core@4.0.5"
SECANTUS_PACKAGE = "secantusdb==0.7.0b3"
ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("OPENHIM_E2E_HOME", ROOT / ".openhim"))
ADMIN = ("root@openhim.org", "openhim-password")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {seconds} s")


def install(home: Path = HOME) -> None:
    """Install SecantusDB into its own virtualenv and the core with npm; a no-op when already there."""
    home.mkdir(parents=True, exist_ok=True)
    python = home / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    if subprocess.run([str(python), "-c", "import secantus"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", SECANTUS_PACKAGE], check=True)
    core_dir = home / "core"
    if not (core_dir / "node_modules" / "openhim-core").exists():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is needed to install the OpenHIM core (apt-get install nodejs npm)")
        core_dir.mkdir(exist_ok=True)
        if not (core_dir / "package.json").exists():
            (core_dir / "package.json").write_text('{"name": "openhim-e2e", "private": true}\n')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", CORE_PACKAGE], cwd=core_dir, check=True)
    # ssl-root-cas would download Mozilla's CA list at start-up without this file; point it at the bundled one.
    latest = core_dir / "node_modules" / "ssl-root-cas" / "ssl-root-cas-latest.js"
    latest.write_text("module.exports = require('./ssl-root-cas');\n")


@dataclass
class Core:
    home: Path = HOME
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['api']}"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['router']}"

    def start(self, run_dir: Path) -> Core:
        install(self.home)
        run_dir.mkdir(parents=True, exist_ok=True)
        names = ("mongo", "api", "router", "router_tls", "rerun", "tcp", "polling", "audit")
        self.ports = {name: free_port() for name in names}
        config = {
            "bindAddress": "127.0.0.1",
            "mongo": {
                "url": f"mongodb://127.0.0.1:{self.ports['mongo']}/openhim",
                "atnaUrl": f"mongodb://127.0.0.1:{self.ports['mongo']}/openhim",
            },
            "router": {
                "externalHostname": "127.0.0.1",
                "httpPort": self.ports["router"],
                "httpsPort": self.ports["router_tls"],
                "timeout": 60000,
            },
            "api": {"enabled": True, "httpsPort": self.ports["api"], "authWindowSeconds": 10},
            "rerun": {
                "httpPort": self.ports["rerun"],
                "host": "127.0.0.1",
                "processor": {"enabled": True, "pollPeriodMillis": 2000},
            },
            "tcpAdapter": {"httpReceiver": {"httpPort": self.ports["tcp"], "host": "127.0.0.1"}},
            "polling": {"enabled": False, "pollingPort": self.ports["polling"], "host": "127.0.0.1"},
            "alerts": {"enableAlerts": False},
            "reports": {"enableReports": False},
            "statsd": {"enabled": False, "host": "127.0.0.1"},
            "bodyCull": {"enabled": False},
            "auditing": {
                "auditEvents": {
                    "interface": "internal",
                    "host": "127.0.0.1",
                    "port": self.ports["audit"],
                    "auditSourceID": "OpenHIM",
                }
            },
        }
        conf = run_dir / "openhim-config.json"
        conf.write_text(json.dumps(config, indent=2))
        db = self._spawn(
            [
                str(self.home / "venv" / "bin" / "python"),
                str(Path(__file__).with_name("secantus_compat.py")),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["mongo"]),
                "--storage-path",
                str(run_dir / "db"),
                "--standalone",
                "--log-level",
                "WARNING",
            ],
            run_dir / "secantus.log",
            cwd=run_dir,
        )
        wait_for_port(self.ports["mongo"], 60, db)
        core = self._spawn(
            ["node", "lib/server.js", f"--conf={conf}"],
            run_dir / "openhim.log",
            cwd=self.home / "core" / "node_modules" / "openhim-core",
        )
        wait_for_port(self.ports["api"], 90, core)
        wait_for_port(self.ports["router"], 90, core)
        log = run_dir / "openhim.log"
        deadline = time.monotonic() + 60
        while "OpenHIM server started" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError("the OpenHIM core did not report that it started")
            time.sleep(0.3)
        return self

    def _spawn(self, cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen:
        out = log.open("ab")
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.procs.clear()


if __name__ == "__main__":
    core = Core().start(HOME / "run")
    sys.stdout.write(f"OpenHIM core: API {core.api_url}, router {core.router_url}; Ctrl-C stops it\n")
    try:
        signal.pause()
    finally:
        core.stop()
