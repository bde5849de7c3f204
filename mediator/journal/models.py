"""Journal tables.

Personal data is in one column only: `Work.record`, the validated record in its compact form (what the mapping reads
of the resource: names, birth date, insurance number, ... as openIMIS sent them), kept while the record may still
have to be sent and cleared at the latest after the retention period (mediator.journal.retention). Everything else
is record keys, counts, states, DHIS2 UIDs, redacted bodies and keyed pseudonyms of insurance numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Transaction(Base):
    """One push: an OpenHIM transaction (or a direct call) on a channel."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    openhim_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(32))  # the OpenHIM transaction status the mediator answered
    http_status: Mapped[int | None] = mapped_column(Integer)
    body_sha256: Mapped[str] = mapped_column(String(64))
    received: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # resource counts
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what DHIS2 created and updated
    failure: Mapped[str | None] = mapped_column(Text)
    aliases: Mapped[list[Any] | None] = mapped_column(JSON)  # [[type, id, key]]: references by id, for slices
    input_rejected: Mapped[int] = mapped_column(Integer, default=0)  # records refused before delivery
    origin: Mapped[str] = mapped_column(String(16), default="channel")  # channel | pull | file

    outcomes: Mapped[list[Outcome]] = relationship(back_populates="transaction", cascade="all, delete-orphan")
    exchanges: Mapped[list[Exchange]] = relationship(back_populates="transaction", cascade="all, delete-orphan")


class Outcome(Base):
    """What became of one record of a push."""

    __tablename__ = "outcomes"
    __table_args__ = (Index("ix_outcomes_record", "record"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    record: Mapped[str] = mapped_column(String(200))  # "Patient/<openIMIS key>"
    status: Mapped[str] = mapped_column(String(16))  # delivered | rejected | pending
    uids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)

    transaction: Mapped[Transaction] = relationship(back_populates="outcomes")


class Exchange(Base):
    """One DHIS2 call of a push, with redacted bodies (the same the OpenHIM orchestration shows)."""

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    request_body: Mapped[str] = mapped_column(Text, default="")
    response_body: Mapped[str] = mapped_column(Text, default="")

    transaction: Mapped[Transaction] = relationship(back_populates="exchanges")


class Work(Base):
    """One record accepted on a push, and where its delivery stands; the queue the delivery workers take from.

    The record itself is kept only while it may still have to be sent (pending, or rejected and so open to a
    replay); it is cleared once the record is delivered or has become needless, and a rejected record's once the
    retention period has passed (then it can no longer be replayed).
    """

    __tablename__ = "work"
    __table_args__ = (
        Index("ix_work_due", "state", "next_attempt_at"),
        Index("ix_work_record", "kind", "key"),
        Index("ix_work_slice", "transaction_id", "state", "stage", "unit", "id"),
        # The rows that still hold a record, by age: what the retention purge looks at, without a full scan.
        Index(
            "ix_work_kept",
            "updated_at",
            sqlite_where=text("record IS NOT NULL"),
            postgresql_where=text("record IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    stage: Mapped[int] = mapped_column(Integer, default=1)  # 0: metadata, delivered before the rest of its push
    unit: Mapped[int] = mapped_column(Integer, default=0)  # records of a push with one unit go in one slice
    content_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[str | None] = mapped_column(Text)  # the validated record (mediator.journal.compact)
    # incoming | pending | delivered | duplicate | rejected | superseded | missing (docs/architecture.md)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100))  # "host:pid" delivering it, or that decided it
    last_error: Mapped[str | None] = mapped_column(Text)
    uids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    waits_for: Mapped[str | None] = mapped_column(String(200), index=True)  # a record pending in another push


class PullCursor(Base):
    """How far pulls have read one openIMIS feed (a resource type, with its search parameters), and the filters
    asked lately: openIMIS caches a search's count for an hour, so a filter is never asked twice within that time."""

    __tablename__ = "pull_cursors"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)  # the openIMIS FHIR base URL
    feed: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. "Patient", "Location?physicalType=si"
    last_updated: Mapped[str | None] = mapped_column(String(32))  # openIMIS's clock when the last kept read began
    queries: Mapped[list[Any] | None] = mapped_column(JSON)  # [[filter, epoch seconds]] asked within the last hour
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PullLease(Base):
    """One pull at a time per openIMIS, across the processes and instances sharing the journal."""

    __tablename__ = "pull_leases"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InsureeNumber(Base):
    """Which insuree an insurance number belongs to, by a keyed pseudonym of the number (never the number): a
    Coverage names its beneficiary by number, and the beneficiary may have come in an earlier push."""

    __tablename__ = "insuree_numbers"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_key: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JournalKey(Base):
    """Secrets the journal's own indexes are keyed with, shared by every instance on the journal."""

    __tablename__ = "journal_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class Purge(Base):
    """One run of the retention purge: when, the cutoff (records decided before it lost their kept data), and
    how many records it cleared."""

    __tablename__ = "purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retention_days: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)


class ChainEntry(Base):
    """One entry of the journal's hash chain, in order of writing: a fact that matters to an audit (a push taken,
    a record's outcome, a DHIS2 call, a push decided, a replay, a purge) and the hash that links it to the entry
    before (mediator.journal.chain). Facts that live in rows of their own (outcomes, calls, purges) are kept there
    and named by `ref`; the others are kept here, in `facts`."""

    __tablename__ = "chain"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[int | None] = mapped_column(Integer)  # the row's id, for outcome, call and purge
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the fact, as mediator.journal.chain writes it
    hash: Mapped[str] = mapped_column(String(64))  # sha256 of the previous hash, seq, kind, ref and digest


class ChainHead(Base):
    """The last entry of the chain (one row): whoever appends locks it first, so entries follow one another."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AggregateFact(Base):
    """What the monthly aggregates know of one record (mediator.aggregates.facts): its latest facts, from the
    newest push that brought it, and the month it was first received (stocks count from then)."""

    __tablename__ = "aggregate_facts"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    push_id: Mapped[int] = mapped_column(Integer)
    since: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AggregateRef(Base):
    """A record's facts refer to another record ("Kind/key"): when that one changes, this one is counted again."""

    __tablename__ = "aggregate_refs"
    __table_args__ = (Index("ix_aggregate_refs_record", "kind", "key"),)

    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(160), primary_key=True)


class AggregateContribution(Base):
    """One root record's share of one cell, for a run of months; replaced whenever the root is counted again."""

    __tablename__ = "aggregate_contributions"
    __table_args__ = (
        Index("ix_aggregate_contributions_root", "root_kind", "root_key"),
        Index("ix_aggregate_contributions_cell", "data_set", "org_unit", "first"),
        # A month's cells are the runs ending in it or later: for flows (one month each) the short side.
        Index("ix_aggregate_contributions_last", "data_set", "org_unit", "last"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    root_kind: Mapped[str] = mapped_column(String(32))
    root_key: Mapped[str] = mapped_column(String(160))
    data_set: Mapped[str] = mapped_column(String(32))
    org_unit: Mapped[str] = mapped_column(String(160))  # the openIMIS key of the ward or facility
    element: Mapped[str] = mapped_column(String(64))
    options: Mapped[str] = mapped_column(String(400))  # option codes joined by "|"
    attributes: Mapped[str] = mapped_column(String(400))
    first: Mapped[int] = mapped_column(Integer)  # months: year * 12 + month - 1
    last: Mapped[int | None] = mapped_column(Integer)  # none: every month since `first`
    value: Mapped[int] = mapped_column(BigInteger)  # in ten-thousandths: summed exactly by the database


class AggregateUnplaced(Base):
    """A root record that cannot be counted yet (its ward, insuree or family head has not come), and why."""

    __tablename__ = "aggregate_unplaced"

    root_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    root_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))


class AggregateDue(Base):
    """A data set's month on an org unit to be sent (again): its cells changed, or its month closed."""

    __tablename__ = "aggregate_due"
    __table_args__ = (Index("ix_aggregate_due_next", "state", "next_attempt_at"),)

    data_set: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_unit: Mapped[str] = mapped_column(String(160), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)  # months: year * 12 + month - 1
    state: Mapped[str] = mapped_column(String(16))  # pending | rejected (a dead letter until sent again)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AggregateSent(Base):
    """The value DHIS2 holds for one cell, as last sent: a cell that went to zero is deleted there."""

    __tablename__ = "aggregate_sent"
    __table_args__ = (Index("ix_aggregate_sent_period", "period"),)

    data_set: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_unit: Mapped[str] = mapped_column(String(160), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    element: Mapped[str] = mapped_column(String(64), primary_key=True)
    options: Mapped[str] = mapped_column(String(400), primary_key=True)
    attributes: Mapped[str] = mapped_column(String(400), primary_key=True)
    value: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AggregateMonth(Base):
    """A closed month whose every cell was made due once (the schedule sends each month once it closes)."""

    __tablename__ = "aggregate_months"

    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
