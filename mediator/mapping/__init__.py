"""Turns domain records into DHIS2 payloads. Pure functions: no I/O, no clock, no globals."""
