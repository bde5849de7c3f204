"""What the settings say about the DHIS2 side: the UIDs in force and how insurees are written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mediator.config.settings import (
    ChannelSettings,
    Settings,
    SettingsError,
    aggregate_only_for,
    counts_aggregates,
)
from mediator.mapping.insuree import InsureeTarget
from mediator.mapping.model import Setup

_loaded: dict[tuple[Path, int], dict[str, object]] = {}


def load_mapping_file(path: Path) -> dict[str, object]:
    """The mapping file's sections; read again only when the file changes."""
    try:
        stamp = (path, path.stat().st_mtime_ns)
        if stamp in _loaded:
            return _loaded[stamp]
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"mapping_file: cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise SettingsError("mapping_file: expected a JSON object of sections")
    _loaded.clear()
    _loaded[stamp] = doc
    return doc


def dhis2_setup(settings: Settings) -> Setup:
    """The DHIS2 UIDs in force: the defaults, then the mapping file, then the single UIDs of the settings."""
    setup = Setup()
    if settings.mapping_file:
        try:
            setup = setup.with_overrides(load_mapping_file(settings.mapping_file))
        except ValueError as exc:
            raise SettingsError(f"mapping_file {settings.mapping_file}: {exc}") from exc
    overrides: dict[str, object] = {"attributes": dict(settings.attribute_uids), "uid_scheme": settings.uid_scheme}
    if settings.person_tracked_entity_type:
        overrides["tracked_entity_type"] = settings.person_tracked_entity_type
    if settings.root_org_unit:
        overrides["root_org_unit"] = settings.root_org_unit
    if settings.insuree_program:
        overrides["programs"] = {"insuree": settings.insuree_program}
    return setup.with_overrides(overrides)


def insuree_target(settings: Settings, channel: ChannelSettings | None = None) -> InsureeTarget:
    """How insurees are written; a channel may send personal data that the global settings keep back."""
    setup = dhis2_setup(settings)
    allowed = set(channel.personal_data) if channel else set()
    return InsureeTarget(
        tracked_entity_type=setup.tracked_entity_type,
        program=setup.programs["insuree"],
        attributes=dict(setup.attributes),
        send_names=settings.send_names or "names" in allowed,
        send_phone=settings.send_phone or "phone" in allowed,
        send_identification_number=settings.send_identification_number or "identification_number" in allowed,
        birth_date_precision=settings.birth_date_precision,
        pseudonym_key=settings.pseudonym_key,
        uid_scheme=setup.uid_scheme,
    )


def mapping_fingerprint(settings: Settings, channel: ChannelSettings | None = None) -> str:
    """A digest of everything that decides what a record becomes in DHIS2 (never the secrets themselves)."""
    target = asdict(insuree_target(settings, channel))
    target["pseudonym_key"] = hashlib.sha256(target["pseudonym_key"].encode()).hexdigest()
    setup = asdict(dhis2_setup(settings))
    parts: list[Any] = [target, setup]
    # Counting too, once it is on: records DHIS2 already had are then taken again once, and counted.
    counted = {"aggregates": counts_aggregates(settings), "aggregate_only": aggregate_only_for(settings, channel)}
    if any(counted.values()):
        parts.append(counted)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
