"""The application factory."""

from __future__ import annotations

from flask import Flask

from mediator.live_settings import LiveSettings
from mediator.settings import load_registration
from mediator.web import channels

MAX_BODY_BYTES = 100 * 1024 * 1024


def create_app(live: LiveSettings) -> Flask:
    app = Flask("mediator")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["MEDIATOR_URN"] = load_registration(live.base.config_file)["urn"]
    app.extensions["live_settings"] = live
    app.extensions["dhis2_sessions"] = {}
    app.register_blueprint(channels.bp)
    return app
