"""openIMIS's FHIR Subscriptions that send insurees and health facilities to the OpenHIM channels as they change.

openIMIS posts the changed resource, bare, once and without retry, from inside the request that changed it, to the
subscription's endpoint with the headers given as one JSON object in a string (`channel.header[0]`). Criteria are
`Patient` (insurees) and `Organisation` (British spelling) with `resourceType=bus` (health facilities).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mediator.openimis.api import FhirApi, OpenImisFailed, OpenImisRefused
from mediator.openimis.feeds import stamp


@dataclass(frozen=True)
class Wanted:
    criteria: str
    reason: str  # openIMIS wants the criteria's resource name here
    endpoint: str


def wanted(router_url: str, insurees_path: str, metadata_path: str) -> list[Wanted]:
    """The subscriptions the mediator wants: insurees to the insurees channel, facilities to the metadata one."""
    base = router_url.rstrip("/")
    return [
        Wanted("Patient", "Patient", base + insurees_path),
        Wanted("Organisation?resourceType=bus", "Organisation", base + metadata_path),
    ]


def basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"Authorization": f"Basic {token}"})


def _existing(api: FhirApi) -> list[dict[str, Any]]:
    # openIMIS caches a search's count for an hour, by its SQL: a filter of its own keeps the list from being cut
    # short. Its bound is in seconds, so two listings in one second (`subscribe`, then `--check`) would share it: a
    # random day's worth of seconds is added too.
    ahead = 86400 + secrets.randbelow(86400)
    query = {"_count": "1000", "_lastUpdated": f"lt{stamp(api.server_now() + ahead)}"}
    return api.search("Subscription", query).resources


@dataclass(frozen=True)
class Outcome:
    criteria: str
    endpoint: str
    action: str  # "in place", "created", "replaced", "missing" (check only)
    id: str | None = None


def _same(found: dict[str, Any], want: Wanted, header: str, now: datetime) -> bool:
    channel = found.get("channel") or {}
    end = str(found.get("end") or "")
    try:
        ends = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (
        found.get("status") == "active"
        and channel.get("endpoint") == want.endpoint
        and (channel.get("header") or [None])[0] == header
        and (ends if ends.tzinfo else ends.replace(tzinfo=UTC)) > now
    )


def subscribe(api: FhirApi, wants: list[Wanted], header: str, years: int = 5, check: bool = False) -> list[Outcome]:
    """Make sure each wanted subscription exists with these credentials; `check` only reports."""
    api.login()
    now = datetime.now(UTC)
    found = _existing(api)
    outcomes = []
    for want in wants:
        same_target = [f for f in found if (f.get("channel") or {}).get("endpoint") == want.endpoint]
        same_target = [f for f in same_target if f.get("criteria") == want.criteria]
        if any(_same(f, want, header, now) for f in same_target):
            outcomes.append(Outcome(want.criteria, want.endpoint, "in place"))
            continue
        if check:
            outcomes.append(Outcome(want.criteria, want.endpoint, "missing"))
            continue
        created = api.post(
            "Subscription",
            {
                "resourceType": "Subscription",
                "status": "active",
                "end": (now + timedelta(days=365 * years)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reason": want.reason,
                "criteria": want.criteria,
                "channel": {"type": "rest-hook", "endpoint": want.endpoint, "header": [header]},
            },
        )
        # Made first, so that openIMIS is never without one; the old ones (other credentials, run out) go after.
        left = 0
        for old in same_target:
            try:
                api.delete("Subscription", str(old.get("id")))
            except (OpenImisFailed, OpenImisRefused):  # only the user who made one may delete it
                left += 1
        action = "created" if not same_target else "replaced" if not left else f"created ({left} older left in place)"
        outcomes.append(Outcome(want.criteria, want.endpoint, action, created.get("id")))
    return outcomes
