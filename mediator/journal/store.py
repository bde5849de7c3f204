"""Opening the journal (SQLite in WAL mode, or PostgreSQL), bringing its schema up to date, and writing to it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from mediator.journal import chain
from mediator.journal.models import Exchange, Outcome, Transaction

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PROBE_SECONDS = 3.0  # how long a health check waits for the journal
# The journal's JSON columns (UIDs, reasons, counts) written and read by orjson.
JSON_CODEC: dict[str, Any] = {
    "json_serializer": lambda value: orjson.dumps(value).decode(),
    "json_deserializer": orjson.loads,
}


def default_url(state_dir: Path) -> str:
    return f"sqlite:///{Path(state_dir).resolve() / 'journal.sqlite'}"


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets the server workers read while one writes; busy_timeout makes writers wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private(database: Path) -> None:
    """The journal holds personal data: its file is the mediator user's alone. SQLite creates the -wal and -shm
    files with the database file's mode, so creating that one 0600 is enough; older ones are narrowed."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(OSError):  # gone meanwhile, or another user's: left as it is
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _private(Path(path))
        engine = create_engine(url, **JSON_CODEC)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **JSON_CODEC)


def _query_only(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def open_read_only(url: str) -> Engine:
    """An engine that cannot write: what the auditor view reads the journal through."""
    if url.startswith("sqlite"):
        engine = create_engine(url, **JSON_CODEC)
        event.listen(engine, "connect", _query_only)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    options = {"options": "-c default_transaction_read_only=on"}
    return create_engine(url, pool_pre_ping=True, connect_args=options, **JSON_CODEC)


def _quick_sqlite(seconds: float, dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    cursor.close()


def open_probe(url: str, seconds: float = PROBE_SECONDS) -> Engine:
    """An engine for health checks and scrapes: a few connections, and an answer (or an error) within `seconds`,
    never a wait on a writer for as long as the delivery would wait."""
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=4, max_overflow=0, pool_timeout=seconds, **JSON_CODEC)
        event.listen(engine, "connect", partial(_quick_sqlite, seconds))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    ms = int(seconds * 1000)
    options = {
        "connect_timeout": max(1, int(seconds)),
        # A lock held by a writer runs out first, so that it reads as busy rather than as a statement too slow.
        "options": f"-c statement_timeout={ms} -c lock_timeout={ms * 2 // 3}",
        "tcp_user_timeout": ms,  # a server that stopped answering (no reset) fails the probe within seconds too
        "keepalives": 1,
        "keepalives_idle": 10,
    }
    return create_engine(
        url, pool_pre_ping=True, pool_size=4, max_overflow=0, pool_timeout=seconds, connect_args=options, **JSON_CODEC
    )


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def newest_revision() -> str:
    """The revision this version's migrations end at."""
    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def schema_revision(connection: Connection) -> str | None:
    """The revision the journal's schema is at (None before the first migration)."""
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest revision, or to `revision` (safe to call at every start, from several
    processes at once)."""
    config = _alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7302046)")  # one migrating instance at a time
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@dataclass(frozen=True)
class PushRecord:
    """What the journal keeps of one push (built by the web layer from the push result)."""

    channel: str
    openhim_id: str | None
    client_id: str | None
    received_at: datetime
    body_sha256: str
    status: str
    http_status: int
    received: dict[str, int]
    stats: dict[str, int]
    failure: str | None
    outcomes: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    origin: str = "channel"


class Journal:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Journal:
        engine = open_engine(url)
        migrate(engine)
        return cls(engine)

    def write(self, push: PushRecord) -> int:
        """Keep one push, its outcomes and its DHIS2 exchanges, in one database transaction."""
        tx = Transaction(
            openhim_id=push.openhim_id,
            client_id=push.client_id,
            channel=push.channel,
            received_at=push.received_at,
            answered_at=datetime.now(UTC),
            status=push.status,
            http_status=push.http_status,
            body_sha256=push.body_sha256,
            received=push.received,
            stats=push.stats,
            failure=push.failure,
            origin=push.origin,
            outcomes=[Outcome(**o) for o in push.outcomes],
            exchanges=[Exchange(**e) for e in push.exchanges],
        )
        with self.sessions.begin() as session:
            session.add(tx)
            session.flush()
            decided = chain.decided_fact(tx.id, tx.status, tx.http_status, tx.answered_at)
            chain.append(
                session,
                [("push", chain.push_fact(session, tx.id)), ("decided", decided)],
                {"outcome": [o.id for o in tx.outcomes], "call": [e.id for e in tx.exchanges]},
            )
            return tx.id

    def session(self) -> Session:
        return self.sessions()

    def count(self, model: type[Any]) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
