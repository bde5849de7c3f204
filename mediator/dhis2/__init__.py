"""Speaks the DHIS2 Web API. Knows nothing of openIMIS. Errors form one tree:

Dhis2Error
├── Dhis2NotConfigured   no DHIS2 URL or credentials yet: nothing was sent
├── Dhis2Unavailable     connection failed, timed out, 5xx or 429: worth retrying later
├── Dhis2AuthFailed      401/403: the DHIS2 user or token is wrong or lacks authority
└── Dhis2Rejected        DHIS2 refused the whole request (400, or a 409 with no per-object report)
"""

from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2Error, Dhis2NotConfigured, Dhis2Rejected, Dhis2Unavailable

__all__ = ["Dhis2AuthFailed", "Dhis2Error", "Dhis2NotConfigured", "Dhis2Rejected", "Dhis2Unavailable"]
