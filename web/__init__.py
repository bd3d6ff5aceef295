"""The Flask app factory: reads like a table of contents of the web process."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from core.logs import configure_logging
from core.settings import Settings, load_settings, load_settings_or_exit


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """Build the web app. `config` is Settings, an environment-like mapping (tests), or None (os.environ).

    None means a process is starting (gunicorn, `flask --app web lumi ...`): a bad configuration then ends
    it with one `Configuration error: NAME: problem` line, like the worker and release processes.
    """
    if isinstance(config, Settings):
        settings = config
    else:
        settings = load_settings(config) if config is not None else load_settings_or_exit()
    configure_logging(settings.log_level)

    app = Flask(__name__)
    app.config["LUMI_SETTINGS"] = settings
    app.config["JSON_SORT_KEYS"] = False
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # webhooks and chat bodies are small

    register_extensions(app, settings)
    register_blueprints(app)
    register_errorhandlers(app)
    register_request_logging(app)
    register_commands(app)
    register_fast_paths(app)
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    from web import extensions

    extensions.init_app(app, settings)


def register_blueprints(app: Flask) -> None:
    from web.admin_api import bp as admin_api_bp
    from web.admin_feeds import bp as admin_feeds_bp
    from web.app_page import bp as app_page_bp
    from web.auth import bp as auth_bp
    from web.chat import bp as chat_bp
    from web.chat_admin import bp as chat_admin_bp
    from web.chat_direct import bp as chat_direct_bp
    from web.data_requests_api import bp as data_requests_api_bp
    from web.deletion_api import bp as deletion_api_bp
    from web.feeds import bp as feeds_bp
    from web.health import bp as health_bp
    from web.proxy import bp as proxy_bp
    from web.webhooks import bp as webhooks_bp

    for blueprint in (health_bp, auth_bp, app_page_bp, admin_api_bp, admin_feeds_bp, chat_admin_bp, webhooks_bp,
                      deletion_api_bp, data_requests_api_bp, proxy_bp, feeds_bp, chat_bp, chat_direct_bp):
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from web import errors

    errors.init_app(app)


def register_request_logging(app: Flask) -> None:
    from web import requestlog

    requestlog.init_app(app)


def register_fast_paths(app: Flask) -> None:
    """Repeat feed requests are answered before Flask (web.feeds.FeedHits); everything else reaches it."""
    from web.feeds import FeedHits

    app.wsgi_app = FeedHits(app.wsgi_app, app.extensions["lumi.services"])  # type: ignore[method-assign]


def register_commands(app: Flask) -> None:
    from web import commands

    commands.init_app(app)
