"""The journal's hash chain: every fact that matters to an audit is an entry, linked by hash to the one written
before it, so that a changed, removed, added or reordered fact is found (`verify`), and a rewritten chain too,
against a head published where the mediator cannot change it (the OpenHIM transaction's properties, the log).

An entry's digest is the sha256 of its fact written canonically (sorted JSON, times in UTC). Its hash is the sha256
of the previous entry's hash, its own position, kind, row and digest. Appending locks the one head row first, in
the database transaction that writes the fact, and as that transaction's last step: instances that share a journal
append one after another, in the order their facts are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mediator.journal.models import ChainEntry, ChainHead, Exchange, Outcome, Purge, Transaction
from mediator.journal.rows import chunks

GENESIS = "0" * 64

# The kinds whose fact is a row of its own, and the columns of that row that make the fact.
ROWS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "outcome": (Outcome, ("transaction_id", "record", "status", "uids", "reasons")),
    "call": (
        Exchange,
        (
            "transaction_id",
            "method",
            "url",
            "started_at",
            "finished_at",
            "status",
            "error",
            "request_body",
            "response_body",
        ),
    ),  # fmt: skip
    "purge": (Purge, ("purged_at", "cutoff", "retention_days", "records")),
}


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def __str__(self) -> str:
        """How the head is published: `seq:hash`."""
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, _, digest = text.strip().partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise ValueError(f"not a chain head (seq:sha256): {text!r}")
        return cls(int(seq), digest.lower())


def digestable_time(value: datetime) -> str:
    """A time as the chain writes it: UTC, `...Z`."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite gives back UTC times without zone
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return digestable_time(value)
    raise TypeError(f"not a fact: {type(value).__name__}")


CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # times through _plain: UTC, whatever the zone


def canonical(fact: Mapping[str, Any]) -> bytes:
    """A fact written canonically: sorted JSON, times in UTC as `...Z` (a database gives times back in its
    session's zone, SQLite without one)."""
    return orjson.dumps(fact, default=_plain, option=CANONICAL)


def digest(fact: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fact)).hexdigest()


def link(previous: str, seq: int, kind: str, ref: int | None, fact_digest: str) -> str:
    text = f"{previous}\x1f{seq}\x1f{kind}\x1f{'' if ref is None else ref}\x1f{fact_digest}"
    return hashlib.sha256(text.encode()).hexdigest()


PUSH_COLUMNS = ("channel", "openhim_id", "client_id", "received_at", "body_sha256", "received", "origin",
                "input_rejected")  # fmt: skip


def push_fact(session: Session, transaction_id: int) -> dict[str, Any]:
    """A push as taken in: what it never changes once kept (its status has entries of its own)."""
    row = session.execute(
        select(*(getattr(Transaction, c) for c in PUSH_COLUMNS)).where(Transaction.id == transaction_id)
    ).one()
    return {"push": transaction_id, **dict(zip(PUSH_COLUMNS, row, strict=True))}


def decided_fact(transaction_id: int, status: str, http_status: int | None, at: datetime | None) -> dict[str, Any]:
    return {"push": transaction_id, "status": status, "http_status": http_status, "at": at}


def row_facts(session: Session, kind: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The facts of rows of a kind, as the database gives them back (what `verify` reads too)."""
    model, columns = ROWS[kind]
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(ids):
        query = select(model.id, *(getattr(model, c) for c in columns)).where(model.id.in_(chunk))
        found.update({row[0]: dict(zip(columns, row[1:], strict=True)) for row in session.execute(query)})
    return found


def append(
    session: Session,
    facts: Iterable[tuple[str, dict[str, Any]]] = (),
    rows: Mapping[str, Sequence[int]] | None = None,
    written: Mapping[str, Mapping[int, dict[str, Any]]] | None = None,
) -> Head:
    """Chain facts kept in the chain (kind, fact) and rows written in this database transaction (kind -> ids, read
    back; or kind -> {id: the row's fact columns as written}, for rows whose values come back from the database as
    they went in: no times); the last step of the transaction. Returns the new head."""
    now = datetime.now(UTC)
    session.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=ChainHead.seq))  # the lock
    head = session.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).one()
    seq, previous = int(head[0]), str(head[1])
    entries = []
    for kind, fact in facts:
        seq += 1
        text = canonical(fact)
        fact_digest = hashlib.sha256(text).hexdigest()
        previous = link(previous, seq, kind, None, fact_digest)
        # Kept as written canonically, so that it reads back to the same digest.
        entries.append({"seq": seq, "kind": kind, "ref": None, "at": now, "facts": orjson.loads(text),
                        "digest": fact_digest, "hash": previous})  # fmt: skip
    kept = {kind: row_facts(session, kind, ids) if ids else {} for kind, ids in (rows or {}).items()}
    for kind, known in (written or {}).items():
        kept.setdefault(kind, {}).update(known)
    for kind, found in kept.items():
        for ref in sorted(found):
            seq += 1
            fact_digest = digest(found[ref])
            previous = link(previous, seq, kind, ref, fact_digest)
            entries.append({"seq": seq, "kind": kind, "ref": ref, "at": now, "facts": None, "digest": fact_digest,
                            "hash": previous})  # fmt: skip
    if entries:
        for start in range(0, len(entries), 1000):
            session.execute(insert(ChainEntry), entries[start : start + 1000])
        session.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=seq, hash=previous))
    return Head(seq, previous)


def record(sessions: Any, kind: str, fact: dict[str, Any]) -> Head:
    """Chain one fact of its own, in a database transaction of its own (`sessions`: a journal's sessionmaker)."""
    with sessions.begin() as session:
        return append(session, [(kind, fact)])


def head(session: Session) -> Head:
    row = session.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).one()
    return Head(int(row[0]), str(row[1]))
