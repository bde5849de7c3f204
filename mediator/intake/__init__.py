"""Intake: what comes in (channel pushes, files, pulls from openIMIS) spooled, read and kept in the journal."""
