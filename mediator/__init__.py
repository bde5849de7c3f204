"""OpenHIM mediator that carries openIMIS FHIR R4 data into DHIS2."""

__version__ = "0.1.0"
