"""WSGI entry point for servers that want a module-level app (gunicorn uses `web:create_app()`)."""

from web import create_app

app = create_app()
