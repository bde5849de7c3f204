"""The running mediator: the web application, the command line, and the wiring of its processes."""
