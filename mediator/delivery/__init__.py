"""Delivery to DHIS2: each kind of record in its own module, sharing the all-or-nothing-per-record loop."""
