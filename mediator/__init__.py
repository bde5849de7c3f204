"""OpenHIM mediator that carries openIMIS FHIR R4 data into DHIS2."""

__version__ = "0.13.0"  # the one version: the package, the CLI and the registration (mediator_config.json)
