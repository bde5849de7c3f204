"""A fake DHIS2 for tests and demos: a real HTTP server that validates and answers like DHIS2 for what the
mediator touches (UIDs, references, option codes, unique attributes, import reports, async jobs)."""

from fake_dhis2.app import FakeDhis2, create_app

__all__ = ["FakeDhis2", "create_app"]
