"""Personal-data retention: each purge of decided records' FHIR resources is recorded, and the rows that still hold
a resource are indexed by age so that the purge finds them without scanning the journal."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
    )
    op.create_index("ix_purges_purged_at", "purges", ["purged_at"])
    kept = sa.text("resource IS NOT NULL")
    op.create_index("ix_work_kept", "work", ["updated_at"], sqlite_where=kept, postgresql_where=kept)


def downgrade() -> None:
    op.drop_index("ix_work_kept", "work")
    op.drop_index("ix_purges_purged_at", "purges")
    op.drop_table("purges")
