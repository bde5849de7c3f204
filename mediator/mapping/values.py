"""How openIMIS values are written as DHIS2 values: numbers without exponent or trailing zeros, ISO dates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from mediator.mapping.model import Setup


def number(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def data_values(setup: Setup, values: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Event data values by data element key; a value openIMIS did not send is left out, not cleared."""
    return [{"dataElement": setup.data_elements[k], "value": v} for k, v in values.items() if v is not None]
