"""Typed errors of the OpenHIM core client (the tree is drawn in mediator.openhim)."""


class OpenHimError(Exception):
    """Anything that went wrong talking to the OpenHIM core."""


class CoreUnavailable(OpenHimError):
    """Connection failed, timed out, or the core answered 5xx."""


class CoreAuthFailed(OpenHimError):
    """The core refused the credentials (401) or the user's rights (403)."""


class CoreRejected(OpenHimError):
    """The core refused the request as invalid (400); the message is the core's."""


class MediatorNotFound(OpenHimError):
    """The core does not know this mediator (404): it has to register again."""
