"""Monthly aggregates: each record's facts and contributions to the cells, the cells due to be sent, and the values
DHIS2 holds."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "aggregate_facts",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("push_id", sa.Integer, nullable=False),
        sa.Column("since", sa.String(7), nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("updated_at", when, nullable=False),
    )
    op.create_table(
        "aggregate_refs",
        sa.Column("ref", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(160), primary_key=True),
    )
    op.create_index("ix_aggregate_refs_record", "aggregate_refs", ["kind", "key"])
    op.create_table(
        "aggregate_contributions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("root_kind", sa.String(32), nullable=False),
        sa.Column("root_key", sa.String(160), nullable=False),
        sa.Column("data_set", sa.String(32), nullable=False),
        sa.Column("org_unit", sa.String(160), nullable=False),
        sa.Column("element", sa.String(64), nullable=False),
        sa.Column("options", sa.String(400), nullable=False),
        sa.Column("attributes", sa.String(400), nullable=False),
        sa.Column("first", sa.Integer, nullable=False),
        sa.Column("last", sa.Integer),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_aggregate_contributions_root", "aggregate_contributions", ["root_kind", "root_key"])
    op.create_index("ix_aggregate_contributions_cell", "aggregate_contributions", ["data_set", "org_unit", "first"])
    op.create_index("ix_aggregate_contributions_last", "aggregate_contributions", ["data_set", "org_unit", "last"])
    op.create_table(
        "aggregate_unplaced",
        sa.Column("root_kind", sa.String(32), primary_key=True),
        sa.Column("root_key", sa.String(160), primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_table(
        "aggregate_due",
        sa.Column("data_set", sa.String(32), primary_key=True),
        sa.Column("org_unit", sa.String(160), primary_key=True),
        sa.Column("period", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", when, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("updated_at", when, nullable=False),
    )
    op.create_index("ix_aggregate_due_next", "aggregate_due", ["state", "next_attempt_at"])
    op.create_table(
        "aggregate_sent",
        sa.Column("data_set", sa.String(32), primary_key=True),
        sa.Column("org_unit", sa.String(160), primary_key=True),
        sa.Column("period", sa.Integer, primary_key=True),
        sa.Column("element", sa.String(64), primary_key=True),
        sa.Column("options", sa.String(400), primary_key=True),
        sa.Column("attributes", sa.String(400), primary_key=True),
        sa.Column("value", sa.String(40), nullable=False),
        sa.Column("sent_at", when, nullable=False),
    )
    op.create_index("ix_aggregate_sent_period", "aggregate_sent", ["period"])
    op.create_table(
        "aggregate_months",
        sa.Column("period", sa.Integer, primary_key=True),
        sa.Column("opened_at", when, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "aggregate_months",
        "aggregate_sent",
        "aggregate_due",
        "aggregate_unplaced",
        "aggregate_contributions",
        "aggregate_refs",
        "aggregate_facts",
    ):
        op.drop_table(table)
