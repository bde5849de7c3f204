"""The journal's hash chain (mediator.journal.chain): every fact that matters to an audit becomes an entry linked by
hash to the one before. What the journal already holds is chained at the upgrade, push by push in the order it was
written: the push, its outcomes and DHIS2 calls, its decision; then the purges."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "chain",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.Integer),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("facts", sa.JSON),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_chain_kind_ref", "chain", ["kind", "ref"])
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    from mediator.journal import chain

    op.execute(
        sa.text("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(genesis=chain.GENESIS)
    )
    session = sa.orm.Session(bind=op.get_bind())
    pushes = session.execute(
        sa.text("SELECT id, status, http_status, answered_at FROM transactions WHERE status != 'Receiving' ORDER BY id")
    ).all()
    for start in range(0, len(pushes), BATCH):
        for tid, status, http_status, answered_at in pushes[start : start + BATCH]:
            facts = [("push", chain.push_fact(session, tid))]
            if status != "Processing":
                facts.append(("decided", chain.decided_fact(tid, status, http_status, answered_at)))
            outcomes = session.execute(sa.text("SELECT id FROM outcomes WHERE transaction_id = :t"), {"t": tid})
            calls = session.execute(sa.text("SELECT id FROM exchanges WHERE transaction_id = :t"), {"t": tid})
            chain.append(session, facts, {"outcome": list(outcomes.scalars()), "call": list(calls.scalars())})
    purges = list(session.execute(sa.text("SELECT id FROM purges ORDER BY id")).scalars())
    if purges:
        chain.append(session, rows={"purge": purges})
    session.flush()


def downgrade() -> None:
    op.drop_table("chain_head")
    op.drop_index("ix_chain_kind_ref", "chain")
    op.drop_table("chain")
