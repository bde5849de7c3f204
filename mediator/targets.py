"""What the settings say about the DHIS2 side: the UIDs in force and how insurees are written."""

from __future__ import annotations

from mediator.mapping.insuree import InsureeTarget
from mediator.mapping.model import Setup
from mediator.settings import Settings


def dhis2_setup(settings: Settings) -> Setup:
    """The DHIS2 UIDs in force: the defaults with the settings' overrides."""
    overrides: dict[str, object] = {"attributes": dict(settings.attribute_uids)}
    if settings.person_tracked_entity_type:
        overrides["tracked_entity_type"] = settings.person_tracked_entity_type
    if settings.root_org_unit:
        overrides["root_org_unit"] = settings.root_org_unit
    if settings.insuree_program:
        overrides["programs"] = {"insuree": settings.insuree_program}
    return Setup().with_overrides(overrides)


def insuree_target(settings: Settings) -> InsureeTarget:
    setup = dhis2_setup(settings)
    return InsureeTarget(
        tracked_entity_type=setup.tracked_entity_type,
        program=setup.programs["insuree"],
        attributes=dict(setup.attributes),
        send_names=settings.send_names,
        send_phone=settings.send_phone,
        send_identification_number=settings.send_identification_number,
        birth_date_precision=settings.birth_date_precision,
        pseudonym_key=settings.pseudonym_key,
    )
