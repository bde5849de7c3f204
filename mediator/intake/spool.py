"""A push's body, spooled to a private file while it is taken in (it holds personal data), and what is left of
bodies whose process died."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mediator.config.settings import Settings
from mediator.journal.compact import encode
from mediator.openimis.records import Record

READ_SIZE = 1 << 20


STALE_SECONDS = 3600


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int


def incoming_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "incoming"


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@contextmanager
def spooled(stream: Readable, directory: Path) -> Iterator[Spooled]:
    """Copy a request body to a private file (it holds personal data), hashing it on the way; removed after."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="push-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            while chunk := stream.read(READ_SIZE):
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
        # Held open while the push is taken in: a process starting beside this one sees the file in use.
        with open(name, "rb"):
            yield Spooled(Path(name), digest.hexdigest(), size)
    finally:
        Path(name).unlink(missing_ok=True)


def remove_stale(directory: Path, now: float | None = None, older_than: float = STALE_SECONDS) -> int:
    """Remove the spool files left by a process that died while reading a push (never kept: that push was not
    answered); they hold personal data.

    A file is left behind when it was last written more than `older_than` seconds ago and no process of this machine
    has it open (a push or pull command may be spooling beside the server). Where open files cannot be seen (no
    /proc), a file is taken for left behind only after STALE_SECONDS, whatever `older_than` says."""
    now = now or time.time()
    candidates = list(directory.glob("push-*.json"))
    if not candidates:
        return 0
    in_use = _open_files()
    if in_use is None:
        older_than = max(older_than, STALE_SECONDS)
    removed = 0
    for path in candidates:
        try:
            if now - path.stat().st_mtime >= older_than and str(path.resolve()) not in (in_use or ()):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _open_files() -> set[str] | None:
    """The files that the processes of this machine we may look at have open (Linux's /proc); None where unknown."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    found: set[str] = set()
    for fds in proc.glob("[0-9]*/fd"):
        try:
            links = list(fds.iterdir())
        except OSError:  # another user's process, or one that just ended
            continue
        for link in links:
            try:
                found.add(os.readlink(link))
            except OSError:
                continue
    return found


class RecordSpool:
    """The records read from a push, in the journal's compact form, in a private file beside its body until the
    journal has them (they hold personal data): validated once, never read from the body again."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="push-", suffix=".records.json", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")

    def write(self, position: int, record: Record) -> None:
        self._file.write(b"%d\t%s\n" % (position, encode(record)))

    def restart(self) -> None:
        """Forget the records written: the push is read again from its start."""
        self._file.seek(0)
        self._file.truncate()

    def kept(self, labels: Sequence[str | None]) -> Iterator[tuple[str, bytes]]:
        """(record, its compact form) for each record still kept (`labels[position]`), in the order of the push."""
        self._file.flush()
        with self.path.open("rb") as file:
            for line in file:
                position, _, data = line.rstrip(b"\n").partition(b"\t")
                label = labels[int(position)]
                if label is not None:
                    yield label, data

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def record_spool(body: Spooled) -> Iterator[RecordSpool]:
    spool = RecordSpool(body.path.parent)
    try:
        yield spool
    finally:
        spool.close()
