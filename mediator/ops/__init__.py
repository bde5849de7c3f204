"""Running the mediator as a service: its readiness, its metrics, and its logs."""
