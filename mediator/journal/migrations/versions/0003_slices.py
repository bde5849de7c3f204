"""Large pushes are delivered in slices: each record knows its stage and the unit it travels with; a push keeps the
references by resource id that its slices need, and how many of its records were refused on input."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("work") as batch:
        batch.add_column(sa.Column("stage", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("unit", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_work_slice", "work", ["transaction_id", "state", "stage", "unit", "id"])
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("aliases", sa.JSON))
        batch.add_column(sa.Column("input_rejected", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_index("ix_work_slice", "work")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("input_rejected")
        batch.drop_column("aliases")
    with op.batch_alter_table("work") as batch:
        batch.drop_column("unit")
        batch.drop_column("stage")
