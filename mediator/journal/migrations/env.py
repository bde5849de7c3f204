"""Alembic environment: the journal's engine connection is handed over by mediator.journal.store.migrate."""

from alembic import context

from mediator.journal.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
