"""A real OpenHIM core on loopback for end-to-end tests, on SecantusDB, installed on first use into .openhim/ (or
$OPENHIM_E2E_HOME) and started on free ports:

- 4.0.5, the npm registry's only release, which speaks only the legacy token scheme on its API;
- 8.5.0, the version implementers deploy (the OpenHIE reference packages pin it), built from its released source
  (`../shared/openhim-local/openhim-core-8.5.0.tar.gz`) with its dependencies from npm; Basic auth.

Run `python -m tests.e2e.openhim_core [4.0.5|8.5.0]` to start one by hand (Ctrl-C stops it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CORE_PACKAGE = "openhim-core@4.0.5"
SECANTUS_PACKAGE = "secantusdb==0.7.0b3"
ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("OPENHIM_E2E_HOME", ROOT / ".openhim"))
ADMIN = ("root@openhim.org", "openhim-password")
VERSIONS = ("4.0.5", "8.5.0")
SOURCE_85 = ROOT.parent / "shared" / "openhim-local" / "openhim-core-8.5.0.tar.gz"


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


def install(home: Path = HOME, version: str = "4.0.5") -> Path:
    """Install SecantusDB into its own virtualenv and the core with npm (a no-op when already there); returns the
    folder the core starts in."""
    home.mkdir(parents=True, exist_ok=True)
    python = home / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    if subprocess.run([str(python), "-c", "import secantus"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", SECANTUS_PACKAGE], check=True)
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install the OpenHIM core (apt-get install nodejs npm)")
    if version == "8.5.0":
        package = _install_from_source(home / "core-8.5.0")
    else:
        core_dir = home / "core"
        if not (core_dir / "node_modules" / "openhim-core").exists():
            core_dir.mkdir(exist_ok=True)
            if not (core_dir / "package.json").exists():
                (core_dir / "package.json").write_text('{"name": "openhim-e2e", "private": true}\n')
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", CORE_PACKAGE], cwd=core_dir, check=True)
        package = core_dir / "node_modules" / "openhim-core"
    # ssl-root-cas would download Mozilla's CA list at start-up without this file; point it at the bundled one.
    latest = package / "node_modules" / "ssl-root-cas" / "ssl-root-cas-latest.js"
    if not latest.parent.exists():  # 4.0.5's dependencies are hoisted beside it
        latest = package.parent / "ssl-root-cas" / "ssl-root-cas-latest.js"
    latest.write_text("module.exports = require('./ssl-root-cas');\n")
    return package


def _install_from_source(folder: Path) -> Path:
    """Core 8.5.0 is not on npm: its released source is unpacked, its dependencies installed with `npm ci` (whose
    `prepare` step compiles src/ into lib/)."""
    if (folder / "lib" / "server.js").exists():
        return folder
    if not SOURCE_85.exists():
        raise FileNotFoundError(f"the source of OpenHIM core 8.5.0 is not at {SOURCE_85}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tarfile.open(SOURCE_85) as archive:  # the repository's files, at the archive's top
        archive.extractall(folder, filter="data")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True)
    if not (folder / "lib" / "server.js").exists():
        raise RuntimeError("npm ci did not build OpenHIM core 8.5.0 (no lib/server.js)")
    return folder


@dataclass
class Core:
    home: Path = HOME
    version: str = "4.0.5"
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def auth_mode(self) -> str:
        """How the mediator and the tests log in to the API: 4.0.5 knows only tokens; on 8.x tokens are deprecated
        (root only), Basic is the scheme."""
        return "token" if self.version.startswith("4.") else "basic"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['api']}"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['router']}"

    def start(self, run_dir: Path) -> Core:
        package = install(self.home, self.version)
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
            # 4.x reads api.httpsPort, 8.x api.port and api.protocol.
            "api": {
                "enabled": True,
                "httpsPort": self.ports["api"],
                "port": self.ports["api"],
                "protocol": "https",
                "authWindowSeconds": 10,
            },
            "rerun": {
                "httpPort": self.ports["rerun"],
                "host": "127.0.0.1",
                "processor": {"enabled": True, "pollPeriodMillis": 2000},
            },
            "tcpAdapter": {"httpReceiver": {"httpPort": self.ports["tcp"], "host": "127.0.0.1"}},
            "polling": {"enabled": True, "pollingPort": self.ports["polling"], "host": "127.0.0.1"},
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
            cwd=package,
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
    core = Core(version=sys.argv[1] if len(sys.argv) > 1 else "4.0.5").start(HOME / "run")
    sys.stdout.write(f"OpenHIM core: API {core.api_url}, router {core.router_url}; Ctrl-C stops it\n")
    try:
        signal.pause()
    finally:
        core.stop()
