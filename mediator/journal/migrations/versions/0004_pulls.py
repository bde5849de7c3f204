"""Pulls from openIMIS and references across pushes: each push says where it came from; the journal keeps a cursor
per openIMIS resource type, a lease so one pull runs at a time per openIMIS, an index from keyed pseudonyms of
insurance numbers to insurees, and which record a waiting record waits for."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="channel"))
    with op.batch_alter_table("work") as batch:
        batch.add_column(sa.Column("waits_for", sa.String(200)))
    op.create_index("ix_work_waits_for", "work", ["waits_for"])
    op.create_table(
        "pull_cursors",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("feed", sa.String(32), primary_key=True),
        sa.Column("last_updated", sa.String(32)),
        sa.Column("queries", sa.JSON),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pull_leases",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "insuree_numbers",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("patient_key", sa.String(160), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "journal_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("journal_keys")
    op.drop_table("insuree_numbers")
    op.drop_table("pull_leases")
    op.drop_table("pull_cursors")
    op.drop_index("ix_work_waits_for", "work")
    with op.batch_alter_table("work") as batch:
        batch.drop_column("waits_for")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("origin")
