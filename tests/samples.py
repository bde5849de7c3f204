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


def area(key: str, level: str, code: str, name: str, parent: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Location",
        "id": key,
        "identifier": [uuid_identifier(key), code_identifier(code, "LC")],
        "status": "active",
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": f"{IG}//CodeSystem/location-type", "code": level}]},
    }
    if parent:
        doc["partOf"] = location_ref(parent)
    return doc


def facility_location(key: str, code: str, name: str, district: str, kind: str = "HOSP") -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": key,
        "identifier": [uuid_identifier(key), code_identifier(code, "FI")],
        "name": name,
        "type": [
            {"coding": [{"system": "http://hl7.org/fhir/v3/ServiceDeliveryLocationRoleType/vs.html", "code": kind}]}
        ],
        "physicalType": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type.html", "code": "si"}]
        },
        "partOf": location_ref(district),
    }


def facility_organization(key: str, code: str, name: str, level: str = "H", legal: str = "G") -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": key,
        "extension": [
            {
                "url": f"{IG}/StructureDefinition/organization-legal-form",
                "valueCodeableConcept": {"coding": [{"code": legal}]},
            },
            {
                "url": f"{IG}//StructureDefinition/organization-hf-level",
                "valueCodeableConcept": {"coding": [{"code": level}]},
            },
        ],
        "identifier": [uuid_identifier(key), code_identifier(code, "LC")],
        "name": name,
    }


def code_list_entry(kind: str, key: str, code: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"resourceType": kind, "id": key, "identifier": [uuid_identifier(key), code_identifier(code)]}
    if kind == "Medication":
        doc["code"] = {"text": name}
    elif kind == "ActivityDefinition":
        doc.update(name=code, title=name)
    else:
        doc["name"] = name
    return doc


REGION = "75250515-40d7-4c77-bafe-a2c65ffc5a72"
DISTRICT = "5345ef14-12ab-4e98-a07c-1e08d7105df4"
WARD = "e50da11b-3e50-483c-846b-0991c13c0935"
HOSPITAL = "079e777b-b12b-4763-a646-3773e906f9d7"


def locations() -> list[dict[str, Any]]:
    """Region → district → ward → the village the sample insurees live in, and a hospital in the district."""
    return [
        area(REGION, "R", "R1", "Ultha"),
        area(DISTRICT, "D", "R1D1", "Rapta", REGION),
        area(WARD, "W", "R1D1M1", "Achi", DISTRICT),
        area(VILLAGE, "V", "R1D1M1V1", "Rachla", WARD),
        facility_location(HOSPITAL, "RAHOS001", "Rapta Hospital", DISTRICT),
        facility_organization(HOSPITAL, "RAHOS001", "Rapta Hospital"),
    ]


POLICY = "0673a137-401e-46e4-be28-f21f649b8eb0"
PRODUCT_CODE = "BCTA0001"


def coverage(key: str = POLICY, beneficiary_number: str = "104000001", product: str = PRODUCT_CODE) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "extension": [
            {"url": f"{IG}//StructureDefinition/coverage-date", "valueDate": "2019-08-20"},
            {"url": f"{IG}//StructureDefinition/coverage-date", "valueDate": "2019-08-21"},
        ],
        "identifier": [uuid_identifier(key), code_identifier("32", "ACSN")],
        "status": "active",
        "beneficiary": {"reference": f"Patient/{beneficiary_number}"},
        "period": {"start": "2019-08-20", "end": "2020-08-19"},
        "class": [{"type": {"coding": [{"code": "plan"}]}, "value": product, "name": "Basic Cover"}],
    }


def contract(
    key: str = POLICY, insurees: tuple[str, ...] = (HEAD, MEMBER), product: str = PRODUCT_CODE
) -> dict[str, Any]:
    patient_refs = [
        {"reference": f"Patient/{k}", "type": "Patient", "identifier": uuid_identifier(k)} for k in insurees
    ]
    return {
        "resourceType": "Contract",
        "identifier": [uuid_identifier(key), code_identifier("32", "ACSN")],
        "status": "Policy",
        "legalState": {"text": "Renewed"},
        "term": [
            {
                "asset": [
                    {
                        "typeReference": patient_refs,
                        "period": [{"start": "2019-08-20", "end": "2020-08-19"}],
                        "valuedItem": [
                            {
                                "entityReference": {"reference": "InsurancePlan/p-1", "display": product},
                                "net": {"value": 10000.0},
                            }
                        ],
                    }
                ]
            }
        ],
    }


CLAIM = "2e5b57f2-d6a0-4aeb-8c55-d58b3f2457c3"
ITEM, SERVICE = "0d66132b-99a6-4f9c-898c-ecb0a30e1338", "488d8bcb-5b88-438c-9077-f177f6f32626"


def _category(code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"{IG}/CodeSystem/claim-status", "code": code}]}


def claim(key: str = CLAIM, patient_key: str = HEAD, facility: str = HOSPITAL) -> dict[str, Any]:
    def line(seq: int, kind: str, ref: str, code: str, qty: float, price: float) -> dict[str, Any]:
        return {
            "extension": [
                {
                    "url": f"{IG}/StructureDefinition/claim-item-reference",
                    "valueReference": {"reference": f"{kind}/{ref}", "type": kind},
                }
            ],
            "sequence": seq,
            "productOrService": {"text": code},
            "quantity": {"value": qty},
            "unitPrice": {"value": price, "currency": "$"},
        }

    return {
        "resourceType": "Claim",
        "id": key,
        "identifier": [uuid_identifier(key), code_identifier("CIA00001", "MR")],
        "type": {"coding": [{"code": "O"}]},
        "patient": {
            "reference": f"Patient/{patient_key}",
            "type": "Patient",
            "identifier": uuid_identifier(patient_key),
        },
        "billablePeriod": {"start": "2019-01-23", "end": "2019-01-23"},
        "created": "2019-01-24",
        "provider": {
            "reference": f"Organization/{facility}",
            "type": "Organization",
            "identifier": uuid_identifier(facility),
        },
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {"coding": [{"code": "A0105", "display": "Typhoid osteomyelitis"}]},
            },
            {
                "sequence": 2,
                "diagnosisCodeableConcept": {"coding": [{"code": "G44", "display": "Other headache syndromes"}]},
            },
        ],
        "item": [line(1, "Medication", ITEM, "0022", 2, 130.0), line(2, "ActivityDefinition", SERVICE, "A1", 1, 400.0)],
        "total": {"value": 660.0, "currency": "$"},
    }


def claim_response(claim_key: str = CLAIM, key: str = "9da194ce-73ed-4fec-9218-082197ebe4b1") -> dict[str, Any]:
    def adjudications(price: float, qty: float, approved: float) -> list[dict[str, Any]]:
        return [
            {"category": _category("2"), "amount": {"value": price}, "value": qty},
            {"category": _category("4"), "amount": {"value": approved}, "value": qty},
            {"category": _category("16"), "amount": {"value": approved}, "value": qty},
        ]

    return {
        "resourceType": "ClaimResponse",
        "id": key,
        "identifier": [uuid_identifier(key)],
        "request": {"reference": f"Claim/{claim_key}", "type": "Claim"},
        "created": "2025-01-15",
        "outcome": "complete",
        "item": [
            {
                "itemSequence": 1,
                "adjudication": adjudications(130.0, 2, 100.0),
                "extension": [
                    {
                        "url": f"{IG}/StructureDefinition/claim-item-reference",
                        "valueReference": {"reference": f"Medication/{ITEM}"},
                    }
                ],
            },
            {
                "itemSequence": 2,
                "adjudication": adjudications(400.0, 1, 400.0),
                "extension": [
                    {
                        "url": f"{IG}/StructureDefinition/claim-item-reference",
                        "valueReference": {"reference": f"ActivityDefinition/{SERVICE}"},
                    }
                ],
            },
        ],
        "total": [
            {"category": _category("2"), "amount": {"value": 660.0}},
            {"category": _category("4"), "amount": {"value": 600.0}},
            {"category": _category("16"), "amount": {"value": 600.0}},
        ],
    }


def code_lists_for_claims() -> list[dict[str, Any]]:
    return [
        code_list_entry("Medication", ITEM, "0022", "PARACETAMOL 500MG"),
        code_list_entry("ActivityDefinition", SERVICE, "A1", "General Consultation"),
    ]


def compact(resource: dict[str, Any]) -> bytes:
    """A resource as the journal keeps it once read: its validated record, in the compact form."""
    from mediator.journal.compact import encode
    from mediator.openimis.reader import read_resource
    from mediator.openimis.schemas import SCHEMAS

    read = read_resource(resource, "", SCHEMAS.keys())
    assert read.record is not None, read.problems
    return encode(read.record)


def accept_resources(journal: Any, resources: Any, **given: Any) -> Any:
    """Accept ("Kind/key", FHIR resource) pairs straight into the journal, as a channel does once it has read them
    (each kept as its validated record); `given` are the other arguments of `accept`, over test defaults."""
    from datetime import UTC, datetime

    from mediator.journal.accept import accept

    defaults: dict[str, Any] = {
        "channel": "insurees",
        "openhim_id": None,
        "client_id": None,
        "received_at": datetime.now(UTC),
        "body_sha256": "0" * 64,
        "received": {},
        "rejected": [],
    }
    records = ((label, compact(resource)) for label, resource in resources)
    return accept(journal, records=records, **{**defaults, **given})
