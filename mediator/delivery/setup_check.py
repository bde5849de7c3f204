"""Checks a DHIS2 against the setup the mediator will write into, and says plainly what is missing or in the way.

Run at start-up (a report in the log) and by `openimis-dhis2-mediator check` (a report and an exit code).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mediator.aggregates import cubes
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.metadata import get_object
from mediator.mapping.insuree import InsureeTarget, attribute_values
from mediator.mapping.model import OPTION_SETS, ORG_UNIT_GROUPS, PROGRAMS, STAGES, Setup
from mediator.openimis.records import Insuree

# A fully described insuree: which attributes the mediator can fill at all under the current privacy settings.
_FULL = Insuree(
    key="k",
    village_key="v",
    insurance_number="n",
    family_key="f",
    gender="F",
    is_head=True,
    marital_status="M",
    education="1",
    profession="1",
    identification_type="N",
    identification_number="x",
    first_service_point_key="s",
    first_name="a",
    last_name="b",
    phone="1",
)


def _ids(refs: Any, key: str) -> set[str]:
    return {str((r.get(key) or {}).get("id")) for r in refs or [] if isinstance(r, dict)}


def _objects(setup: Setup) -> Iterator[tuple[str, str, str]]:
    yield "trackedEntityTypes", setup.tracked_entity_type, "tracked entity type Person"
    yield "organisationUnits", setup.root_org_unit, "root org unit"
    for key, p in PROGRAMS.items():
        yield "programs", setup.programs[key], f"program {p.name!r}"
    for key, s in STAGES.items():
        yield "programStages", setup.stages[key], f"program stage {s.name!r}"
    for key, uid in setup.attributes.items():
        yield "trackedEntityAttributes", uid, f"attribute {key}"
    for key, uid in setup.data_elements.items():
        yield "dataElements", uid, f"data element {key}"
    for key, o in OPTION_SETS.items():
        yield "optionSets", setup.option_sets[key], f"option set {o.name!r}"
    for key, (_, name) in ORG_UNIT_GROUPS.items():
        yield "organisationUnitGroups", setup.org_unit_groups[key], f"org unit group {name!r}"


def check_setup(client: Dhis2Client, setup: Setup, target: InsureeTarget) -> list[str]:
    """Problems found, each a sentence naming the UID and what to do; an empty list means ready."""
    problems = []
    for collection, uid, what in _objects(setup):
        if get_object(client, collection, uid, "id") is None:
            problems.append(f"{what} ({uid}) is not in DHIS2: run `openimis-dhis2-mediator bootstrap` or map it")
    program = get_object(
        client,
        "programs",
        setup.programs["insuree"],
        "programTrackedEntityAttributes[mandatory,trackedEntityAttribute[id]]",
    )
    if program is not None:
        assigned = program.get("programTrackedEntityAttributes") or []
        in_program = _ids(assigned, "trackedEntityAttribute")
        sent = {name for name, value in attribute_values(_FULL, None, target).items() if value is not None}
        names = {uid: name for name, uid in target.attributes.items()}
        for name, uid in target.attributes.items():
            if uid not in in_program:
                problems.append(
                    f"attribute {name} ({uid}) is not assigned to the Family/Insuree program (DHIS2 would answer E1019)"
                )
        for pa in assigned:
            uid = str((pa.get("trackedEntityAttribute") or {}).get("id"))
            if pa.get("mandatory") and names.get(uid) not in sent:
                problems.append(
                    f"attribute {names.get(uid, uid)} ({uid}) is mandatory in the Family/Insuree program but the "
                    "mediator does not send it with the current privacy settings: DHIS2 would refuse every insuree "
                    "(E1018); make it optional in DHIS2"
                )
    for key, stage in STAGES.items():
        found = get_object(client, "programStages", setup.stages[key], "programStageDataElements[dataElement[id]]")
        if found is None:
            continue
        present = _ids(found.get("programStageDataElements"), "dataElement")
        for de in stage.data_elements:
            if setup.data_elements[de] not in present:
                problems.append(
                    f"data element {de} ({setup.data_elements[de]}) is not in program stage {stage.name!r} (E1305)"
                )
    return problems


def check_aggregates(client: Dhis2Client) -> list[str]:
    """What the monthly data sets lack in DHIS2: their data sets, data elements, category combos, and the option
    combos DHIS2 makes for a combo (by its maintenance task, which bootstrap runs)."""
    problems = []
    wanted: list[tuple[str, str, str]] = []
    for data_set in cubes.DATA_SETS.values():
        wanted.append(("dataSets", data_set.uid, f"data set {data_set.code}"))
        wanted += [("dataElements", e.uid, f"data element {e.code}") for e in data_set.elements]
        combos = {e.combo_uid: e.combo_name for e in data_set.elements if e.combo_uid}
        if data_set.combo_uid:
            combos[data_set.combo_uid] = data_set.combo_name
        wanted += [("categoryCombos", uid, f"category combo {name}") for uid, name in combos.items()]
    missing = set()
    for collection, uid, what in dict.fromkeys(wanted):
        if get_object(client, collection, uid, "id") is None:
            missing.add(uid)
            problems.append(f"{what} ({uid}) is not in DHIS2: run `openimis-dhis2-mediator bootstrap`")
    combo_uids = sorted({uid for collection, uid, _ in wanted if collection == "categoryCombos"} - missing)
    if combo_uids:
        status, body = client.request(
            "GET",
            "/api/categoryOptionCombos",
            params={"filter": f"categoryCombo.id:in:[{','.join(combo_uids)}]", "fields": "categoryCombo[id]"},
        )
        made = {str((c.get("categoryCombo") or {}).get("id")) for c in (body or {}).get("categoryOptionCombos") or []}
        for uid in combo_uids:
            if status == 200 and uid not in made:
                problems.append(
                    f"category combo {uid} has no option combos yet: run `openimis-dhis2-mediator bootstrap` (it "
                    "runs DHIS2's category option combo update)"
                )
    return problems
