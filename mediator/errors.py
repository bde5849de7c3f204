"""The root of every error the mediator raises on purpose. Each kind says how it is answered, so no caller maps
errors to answers by testing their types:

    MediatorError                  http  OpenHIM     FHIR code    retryable
    ├── Refused (a request)        4xx   Completed   invalid      no
    ├── SettingsError              500   Failed      exception    no
    ├── PullRunning                409   Completed   conflict     yes
    ├── AggregatesBusy             409   Completed   conflict     yes   (mediator.delivery.aggregates; and
    │                                                                   AggregatesOff: 409, not-supported)
    ├── Dhis2Error                 502   Failed      exception    no    (mediator.dhis2: unavailable, not
    │                                                                   configured, auth failed, rejected)
    ├── OpenImisError              502   Failed      exception    no    (mediator.openimis.api)
    └── OpenHimError               502   Failed      exception    no    (mediator.openhim)

`retryable`: the same request may succeed later unchanged (DHIS2 or the core back up, a pull lease freed). The
heartbeat warns and tries again on a retryable error and reports the others as needing an administrator. (A push's
records met by any DHIS2 error wait and are tried again with backoff: DHIS2 refusing a record is a rejection of
that record, not an error.)
"""

from __future__ import annotations

from typing import Any


class MediatorError(Exception):
    http_status: int = 500  # a refusal carries its own
    openhim_status: str = "Failed"
    fhir_code: str = "exception"
    retryable: bool = False
    summary: str = "the mediator could not do this"  # what it says of the system it concerns: "DHIS2 is not available"

    def issue(self, severity: str = "error") -> dict[str, Any]:
        """The OperationOutcome issue that tells the client."""
        return {"severity": severity, "code": self.fhir_code, "diagnostics": f"{self.summary}: {self}"}
