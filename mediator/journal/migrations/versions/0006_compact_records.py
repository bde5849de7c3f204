"""Records are kept validated, in the mediator's compact form, instead of as the FHIR resource they came in: the
`resource` column becomes `record`, and what it still holds is read once more and kept in the new form.

A resource that no longer reads (none should: each was validated when it came in) leaves its row rejected, with
the reasons, instead of pending with nothing to send; a dead letter keeps DHIS2's reasons, and is no longer
replayable. Content hashes stay as they were: a record delivered before
this is sent once more the next time openIMIS sends it, then known again (sending again is harmless)."""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

BATCH = 500


def upgrade() -> None:
    from mediator.journal.compact import encode
    from mediator.openimis.reader import read_resource
    from mediator.openimis.schemas import SCHEMAS

    op.drop_index("ix_work_kept", "work")
    op.execute("ALTER TABLE work RENAME COLUMN resource TO record")
    holds = sa.text("record IS NOT NULL")
    op.create_index("ix_work_kept", "work", ["updated_at"], sqlite_where=holds, postgresql_where=holds)
    bind = op.get_bind()
    work = sa.table(
        "work",
        sa.column("id", sa.Integer),
        sa.column("record", sa.Text),
        sa.column("state", sa.String),
        sa.column("reasons", sa.JSON),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(work.c.id, work.c.record, work.c.state)
            .where(work.c.record.is_not(None), work.c.id > last)
            .order_by(work.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for wid, text, state in rows:
            last = wid
            resource = json.loads(text)
            if isinstance(resource, dict) and "t" in resource and "resourceType" not in resource:
                continue  # already compact
            read = read_resource(resource, "", SCHEMAS.keys())
            try:
                kept = None if read.record is None else encode(read.record).decode()
            except (TypeError, ValueError):  # a value the compact form cannot hold (an integer past 64 bits)
                kept = None
            if kept is not None:
                values: dict = {"record": kept}
            elif state == "rejected":
                values = {"record": None}  # a dead letter keeps DHIS2's reasons; it can no longer be replayed
            else:
                reasons = [{"field": p.field, "code": "", "message": p.message} for p in read.problems]
                why = reasons or [{"field": "resource", "code": "", "message": "no longer read as a record"}]
                values = {"record": None, "state": "rejected", "reasons": why, "updated_at": datetime.now(UTC)}
            bind.execute(sa.update(work).where(work.c.id == wid).values(**values))


def downgrade() -> None:
    raise NotImplementedError("records kept in the compact form cannot be turned back into FHIR resources")
