"""Settings: mediator_config.json, the environment and the OpenHIM console, and the mapping file."""
