"""openIMIS-shaped FHIR resources for tests, written the way openIMIS's FHIR module emits them."""

from __future__ import annotations

import copy
from typing import Any

IG = "https://openimis.github.io/openimis_fhir_r4_ig"
VILLAGE = "b2e5b0c1-3d57-408c-b7de-11511ce1cbcf"
OTHER_VILLAGE = "4c7f2b7e-5d0c-4a2a-9b1e-2f64d41a7c11"
FACILITY = "6a9d34c1-1111-4c22-8f0e-9ad1b2c3d4e5"
FAMILY = "1e055f4e-bd7c-4f60-85ba-b55295e9414f"
HEAD = "55c8cabb-e67d-405d-b7f4-5e4435cc2eff"
MEMBER = "0f3a8e4d-2b6c-4e1a-9c3d-7b5e6f4a3d21"


def uuid_identifier(value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": f"{IG}/CodeSystem/openimis-identifiers", "code": "UUID"}]}, "value": value}


def code_identifier(value: str, code: str = "Code") -> dict[str, Any]:
    return {"type": {"coding": [{"system": f"{IG}/CodeSystem/openimis-identifiers", "code": code}]}, "value": value}


def location_ref(uuid: str) -> dict[str, Any]:
    return {"reference": f"Location/{uuid}", "type": "Location", "identifier": uuid_identifier(uuid)}


def patient(
    key: str = HEAD,
    chf_id: str = "104000001",
    village: str | None = VILLAGE,
    family: str | None = FAMILY,
    is_head: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    ext: list[dict[str, Any]] = [
        {"url": f"{IG}/StructureDefinition/patient-is-head", "valueBoolean": is_head},
        {"url": f"{IG}/StructureDefinition/patient-card-issued", "valueBoolean": False},
        {
            "url": f"{IG}/StructureDefinition/patient-education-level",
            "valueCodeableConcept": {"coding": [{"system": "CodeSystem/patient-education-level", "code": "4"}]},
        },
        {
            "extension": [
                {"url": "number", "valueString": "NAT-778899"},
                {"url": "type", "valueCodeableConcept": {"coding": [{"code": "N"}]}},
            ],
            "url": f"{IG}/StructureDefinition/patient-identification",
        },
    ]
    if family:
        ext.append(
            {
                "url": f"{IG}/StructureDefinition/patient-group-reference",
                "valueReference": {
                    "reference": f"Group/{family}",
                    "type": "Group",
                    "identifier": uuid_identifier(family),
                },
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": key,
        "extension": ext,
        "identifier": [uuid_identifier(key), code_identifier(chf_id)],
        "name": [{"use": "usual", "family": "Nonino", "given": ["Ageni"]}],
        "gender": "female",
        "birthDate": "1979-03-19",
        "telecom": [{"system": "phone", "value": "+255 700 000 001"}],
        "maritalStatus": {"coding": [{"system": "http://hl7.org/fhir/valueset-marital-status.html", "code": "M"}]},
    }
    if village:
        resource["address"] = [
            {
                "extension": [
                    {"url": f"{IG}/StructureDefinition/address-municipality", "valueString": "Jaber"},
                    {
                        "url": f"{IG}//StructureDefinition/address-location-reference",
                        "valueReference": location_ref(village),
                    },
                ],
                "use": "home",
                "type": "physical",
                "city": "Utha",
            }
        ]
    resource.update(extra)
    return resource


def group(key: str = FAMILY, members: tuple[str, ...] = (HEAD, MEMBER), poverty: bool = True) -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": key,
        "extension": [
            {"url": f"{IG}/StructureDefinition/group-poverty-status", "valueBoolean": poverty},
            {
                "url": f"{IG}/StructureDefinition/group-type",
                "valueCodeableConcept": {"coding": [{"system": "CodeSystem/group-type", "code": "H"}]},
            },
            {
                "url": f"{IG}/StructureDefinition/group-address",
                "valueAddress": {
                    "extension": [
                        {
                            "url": f"{IG}/StructureDefinition/address-location-reference",
                            "valueReference": location_ref(VILLAGE),
                        }
                    ]
                },
            },
        ],
        "identifier": [uuid_identifier(key), code_identifier("104000001")],
        "type": "Person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{m}", "type": "Patient"}} for m in members],
    }


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"http://localhost/api/api_fhir_r4/{r['resourceType']}/{r.get('id', '')}",
                "resource": copy.deepcopy(r),
            }
            for r in resources
        ],
    }
