"""Reads openIMIS FHIR R4 resources into plain domain records (marshmallow schemas → dataclasses)."""
