"""Typed errors of the OpenHIM core client (the tree is drawn in mediator.openhim); each says how it is answered."""

from __future__ import annotations

from mediator.errors import MediatorError


class OpenHimError(MediatorError):
    """Anything that went wrong talking to the OpenHIM core."""

    http_status = 502
    summary = "the OpenHIM core could not take this"


class CoreUnavailable(OpenHimError):
    """Connection failed, timed out, or the core answered 5xx."""

    http_status = 503
    fhir_code = "transient"
    retryable = True
    summary = "the OpenHIM core is not available"


class CoreAuthFailed(OpenHimError):
    """The core refused the credentials (401) or the user's rights (403)."""

    fhir_code = "security"
    summary = "the OpenHIM core refused the mediator's user"


class CoreRejected(OpenHimError):
    """The core refused the request as invalid (400); the message is the core's."""

    fhir_code = "processing"
    summary = "the OpenHIM core refused the request"


class MediatorNotFound(OpenHimError):
    """The core does not know this mediator (404): it has to register again."""

    fhir_code = "not-found"
    retryable = True
    summary = "the OpenHIM core does not know this mediator"
