"""devshop's Flask app factory: the stand-in Shopify that Lumi's real client code talks to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a devshop. Config keys are listed in devshop.state.DEFAULTS; all are optional."""
    app = Flask("devshop")
    register_state(app, config or {})
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def register_state(app: Flask, config: Mapping[str, Any]) -> None:
    from devshop.state import DevShopState
    from shopify.version import API_VERSION

    app.extensions["devshop"] = DevShopState(config, API_VERSION)


def register_blueprints(app: Flask) -> None:
    from devshop import admin, app_bridge, bulk, control, customers, graphql_api, oauth, proxy, storefront

    state = app.extensions["devshop"]
    app.register_blueprint(graphql_api.bp)
    app.register_blueprint(bulk.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(app_bridge.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(storefront.bp)
    app.register_blueprint(customers.bp)
    proxy.register(app, state.app_proxy)

    @app.get("/")
    def index() -> Response:
        return state.json({"devshop": True, "shops": [s.domain for s in state.shops.all()],
                           "admin_base_url": "/shops/{shop}"})


def register_errorhandlers(app: Flask) -> None:
    def http_error(err: HTTPException) -> Response:
        # Shopify answers unknown paths with {"errors":"Not Found"}; keep JSON everywhere.
        from devshop.state import DevShopState

        return DevShopState.json({"errors": err.name}, err.code or 500)

    app.register_error_handler(HTTPException, http_error)
