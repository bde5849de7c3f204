"""Typed errors of the DHIS2 client (the tree is drawn in mediator.dhis2)."""


class Dhis2Error(Exception):
    """Anything that kept a DHIS2 request from giving an answer the mediator can use."""


class Dhis2NotConfigured(Dhis2Error):
    """The DHIS2 URL or credentials are not set."""


class Dhis2Unavailable(Dhis2Error):
    """DHIS2 could not be reached, timed out, or answered 5xx/429: the same request may succeed later."""


class Dhis2AuthFailed(Dhis2Error):
    """DHIS2 refused the credentials (401) or the user's authority (403)."""


class Dhis2Rejected(Dhis2Error):
    """DHIS2 refused the whole request; retrying the same request cannot help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Dhis2ApiMissing(Dhis2Unavailable):
    """DHIS2 answered 404 for an API the mediator chose by its version: it was upgraded or replaced. The version is
    asked again and the records wait for a retry."""
