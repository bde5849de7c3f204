"""Speaks the OpenHIM mediator protocol: registration, heartbeat, live config, response envelope.

Knows nothing of DHIS2 or openIMIS. Errors form one tree:

    OpenHimError
    ├── CoreUnavailable      the core could not be reached or answered 5xx: retry later
    ├── CoreAuthFailed       401/403: wrong credentials or user not in the admin group
    ├── CoreRejected         400: the core refused the document (message says why)
    └── MediatorNotFound     404 on heartbeat: the mediator was deleted, register again
"""

from mediator.openhim.errors import (
    CoreAuthFailed,
    CoreRejected,
    CoreUnavailable,
    MediatorNotFound,
    OpenHimError,
)

__all__ = ["CoreAuthFailed", "CoreRejected", "CoreUnavailable", "MediatorNotFound", "OpenHimError"]
