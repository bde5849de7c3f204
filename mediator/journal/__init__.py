"""The mediator's own durable journal: what came in on which OpenHIM transaction, what was sent to DHIS2, what DHIS2
answered, and what became of each record. SQLite by default, PostgreSQL for production and several instances."""
