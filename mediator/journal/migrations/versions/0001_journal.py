"""The journal: transactions, per-record outcomes and DHIS2 exchanges."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("openhim_id", sa.String(64)),
        sa.Column("client_id", sa.String(128)),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received", sa.JSON, nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("failure", sa.Text),
    )
    op.create_index("ix_transactions_openhim_id", "transactions", ["openhim_id"])
    op.create_index("ix_transactions_received_at", "transactions", ["received_at"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.Integer, sa.ForeignKey("transactions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("record", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("uids", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
    )
    op.create_index("ix_outcomes_transaction_id", "outcomes", ["transaction_id"])
    op.create_index("ix_outcomes_record", "outcomes", ["record"])
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.Integer, sa.ForeignKey("transactions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.String(200)),
        sa.Column("request_body", sa.Text, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
    )
    op.create_index("ix_exchanges_transaction_id", "exchanges", ["transaction_id"])


def downgrade() -> None:
    op.drop_table("exchanges")
    op.drop_table("outcomes")
    op.drop_table("transactions")
