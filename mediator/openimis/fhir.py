"""Helpers for openIMIS's FHIR: identifiers, references, extensions and codes, written as openIMIS emits them.

openIMIS writes system and extension URLs inconsistently (relative, double slashes, HTML pages), so matching is
always on the last path segment and the code, never on the whole URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

UUID_TYPE = "UUID"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# What a FHIR id may be: every key the journal keeps is one (or a UUID, which is one too).
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
FHIR_ID_RULE = "1 to 64 letters, digits, '-' or '.'"


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def is_fhir_id(value: Any) -> bool:
    return isinstance(value, str) and _FHIR_ID.fullmatch(value) is not None


def _key(value: str) -> str | None:
    """A key as the journal keeps it, or None for a value that is no FHIR id."""
    value = normalize_key(value)
    return value if is_fhir_id(value) else None


def normalize_key(value: str) -> str:
    """UUIDs are compared lower-case (openIMIS on SQL Server writes them upper-case); other ids as given."""
    value = value.strip()
    return value.lower() if is_uuid(value) else value


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a FHIR list; anything else (unvalidated input) counts as empty."""
    if type(value) is not list:
        return []
    return [v for v in value if type(v) is dict or isinstance(v, Mapping)]


def last_segment(url: Any) -> str:
    return _last_segment(url) if isinstance(url, str) else ""


@lru_cache(maxsize=4096)  # the same few system and extension URLs, in every resource
def _last_segment(url: str) -> str:
    text = url.rstrip("/").rsplit("/", 1)[-1]
    return text.removesuffix(".html").removeprefix("StructureDefinition-").removeprefix("CodeSystem-")


def first_code(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    for coding in _mappings(concept.get("coding")):
        if coding.get("code"):
            return str(coding["code"])
    return None


def identifier_type(identifier: Mapping[str, Any]) -> str | None:
    return first_code(identifier.get("type"))


def uuid_identifier(identifiers: Any) -> str | None:
    for ident in _mappings(identifiers):
        if identifier_type(ident) == UUID_TYPE and ident.get("value"):
            return _key(str(ident["value"]))
    return None


def business_code(identifiers: Any) -> str | None:
    """The deployment's business code: any identifier that is not the UUID (CHF id, claim code...)."""
    for ident in _mappings(identifiers):
        if identifier_type(ident) != UUID_TYPE and ident.get("value"):
            return str(ident["value"])
    return None


def record_key(resource: Mapping[str, Any]) -> str | None:
    """How a record is keyed: its openIMIS UUID identifier, else its resource id."""
    rid = resource.get("id")
    return uuid_identifier(resource.get("identifier")) or (_key(rid) if isinstance(rid, str) and rid else None)


def _reference_id(reference: Mapping[str, Any]) -> str | None:
    """The id in `Type/id` (any type: openIMIS names claims `ClaimV2/<uuid>`), or in `urn:uuid:<id>`."""
    ref = reference.get("reference")
    ref = ref.strip() if isinstance(ref, str) else ""
    raw = _raw_reference_id(ref)
    return None if raw is None else _key(raw)


def _raw_reference_id(ref: str) -> str | None:
    if ref.startswith("urn:uuid:"):
        return ref.removeprefix("urn:uuid:") or None
    parts = [p for p in ref.split("/_history/", 1)[0].split("/") if p]
    return parts[-1] if len(parts) >= 2 else None


def reference_id_refused(reference: Mapping[str, Any]) -> bool:
    """Whether a reference names its record by an id that is no FHIR id (so it names no record)."""
    ref = reference.get("reference")
    raw = _raw_reference_id(ref.strip()) if isinstance(ref, str) else None
    return raw is not None and _key(raw) is None


def _reference_identifier(reference: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """(type code, value) of the identifier a reference carries, if it carries one with a value."""
    ident = reference.get("identifier")
    if not isinstance(ident, Mapping) or not isinstance(ident.get("value"), str) or not ident["value"].strip():
        return None
    return identifier_type(ident), ident["value"].strip()


def reference_key(reference: Any) -> str | None:
    """The key of the record a reference points to: its UUID identifier, else the id in `Type/id`, else an
    identifier whose value is a UUID whatever its type says. An identifier alone that holds a business code (an
    insurance number, a claim code) names no key: see `reference_code`."""
    if not isinstance(reference, Mapping):
        return None
    ident = _reference_identifier(reference)
    if ident is not None and ident[0] == UUID_TYPE:
        return _key(ident[1])
    found = _reference_id(reference)
    if found is not None:
        return found
    if ident is not None and is_uuid(ident[1]):
        return normalize_key(ident[1])
    return None


def reference_code(reference: Any) -> str | None:
    """The business code a reference names the record by (Coverage names its beneficiary `Patient/<CHF id>`):
    an identifier that is not a UUID, else the id in `Type/id`."""
    if not isinstance(reference, Mapping):
        return None
    ident = _reference_identifier(reference)
    if ident is not None and ident[0] != UUID_TYPE and not is_uuid(ident[1]):
        return ident[1]
    found = _reference_id(reference)
    return None if found is None or is_uuid(found) else found


def extension(extensions: Any, name: str) -> Mapping[str, Any] | None:
    for ext in _mappings(extensions):
        if last_segment(ext.get("url")) == name:
            return ext
    return None


def extension_value(extensions: Any, name: str, kind: str) -> Any:
    ext = extension(extensions, name)
    return None if ext is None else ext.get("value" + kind)
