"""Policies → repeatable "Policy details" events, one per insuree covered, in their Family/Insuree enrollment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace
from typing import Any

from mediator.mapping.insuree import enrollment_uid
from mediator.mapping.model import Setup
from mediator.mapping.uids import derive_uid
from mediator.mapping.values import data_values, iso_date, number
from mediator.openimis.records import Policy


def merge_policies(policies: Iterable[Policy]) -> list[Policy]:
    """One policy per key: the Contract's fields first, the Coverage filling what the Contract lacks."""
    merged: dict[str, Policy] = {}
    for p in sorted(policies, key=lambda p: p.kind != "Contract"):
        seen = merged.get(p.key)
        if seen is None:
            merged[p.key] = p
            continue
        filled = {
            f.name: getattr(p, f.name) for f in fields(Policy) if not getattr(seen, f.name) and getattr(p, f.name)
        }
        merged[p.key] = replace(seen, **filled)
    return list(merged.values())


def policy_event_uid(policy_key: str, insuree_key: str) -> str:
    return derive_uid("policyEvent", f"{policy_key}:{insuree_key}")


def policy_event(policy: Policy, insuree_key: str, org_unit: str, setup: Setup) -> dict[str, Any]:
    """A value openIMIS did not send is left out (not cleared): a Coverage knows less than a Contract."""
    values = {
        "policy.stage": policy.stage,
        "policy.status": policy.status,
        "policy.product": policy.product_code,
        "policy.id": policy.number or policy.key,
        "policy.value": number(policy.value),
        "policy.start_date": iso_date(policy.start_date),
        "policy.effective_date": iso_date(policy.effective_date),
        "policy.expiry_date": iso_date(policy.expiry_date),
    }
    occurred = policy.enroll_date or policy.start_date or policy.effective_date
    program = setup.programs["insuree"]
    return {
        "event": policy_event_uid(policy.key, insuree_key),
        "program": program,
        "programStage": setup.stages["policy"],
        "enrollment": enrollment_uid(insuree_key, program),
        "orgUnit": org_unit,
        "occurredAt": iso_date(occurred),
        "status": "ACTIVE",
        "dataValues": data_values(setup, values),
    }
