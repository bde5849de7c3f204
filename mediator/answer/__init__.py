"""What the mediator tells others of a push: outcomes per record, the OpenHIM response, orchestrations,
and the redaction that keeps personal data out of them."""
