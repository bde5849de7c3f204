"""Typed errors of the DHIS2 client (the tree is drawn in mediator.dhis2); each says how it is answered."""

from __future__ import annotations

from mediator.errors import MediatorError


class Dhis2Error(MediatorError):
    """Anything that kept a DHIS2 request from giving an answer the mediator can use."""

    http_status = 502
    summary = "DHIS2 could not take this"


class Dhis2NotConfigured(Dhis2Error):
    """The DHIS2 URL or credentials are not set: the records wait until they are."""

    http_status = 503
    fhir_code = "transient"
    retryable = True
    summary = "DHIS2 is not configured"


class Dhis2Unavailable(Dhis2Error):
    """DHIS2 could not be reached, timed out, or answered 5xx/429: the same request may succeed later."""

    fhir_code = "transient"
    retryable = True
    summary = "DHIS2 is not available"


class Dhis2AuthFailed(Dhis2Error):
    """DHIS2 refused the credentials (401) or the user's authority (403): the records wait for an administrator
    to fix the DHIS2 user."""

    fhir_code = "security"
    retryable = True
    summary = "DHIS2 refused the mediator's user"


class Dhis2Rejected(Dhis2Error):
    """DHIS2 refused the whole request; retrying the same request cannot help."""

    fhir_code = "processing"
    summary = "DHIS2 refused the request"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status


class Dhis2ApiMissing(Dhis2Unavailable):
    """DHIS2 answered 404 for an API the mediator chose by its version: it was upgraded or replaced. The version is
    asked again and the records wait for a retry."""
