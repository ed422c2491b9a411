"""Where a request finds the shared Services: on the app, put there by the factory."""

from __future__ import annotations

from flask import Flask, current_app

from service.wiring import Services

EXTENSION_KEY = "chronoseal"


def attach(app: Flask, services: Services) -> None:
    """Make `services` reachable from handlers of `app`."""
    app.extensions[EXTENSION_KEY] = services


def current_services() -> Services:
    """The Services of the app handling this request."""
    services: Services = current_app.extensions[EXTENSION_KEY]
    return services
