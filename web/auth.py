"""Install routes: `/auth/install` → Shopify's authorize screen → `/auth/callback`; a first install starts a sync."""

from __future__ import annotations

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response

from runtime.services import Services
from shopify.install import Installed, InstallError, begin_install, complete_install, embedded_app_url
from shopify.shops import ShopRecord
from web.errors import APIError
from web.extensions import get_services

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.get("/install")
def install() -> Response:
    try:
        url = begin_install(get_services(), request.args.get("shop"))
    except InstallError as err:
        raise APIError(err.status, err.code, err.message) from None
    return redirect(url, code=302)


@bp.get("/callback")
def callback() -> Response:
    services = get_services()
    try:
        record = after_install(services, complete_install(services, list(request.args.items(multi=True))))
    except InstallError as err:
        raise APIError(err.status, err.code, err.message) from None
    return redirect(embedded_app_url(services, record.domain), code=302)


def after_install(services: Services, installed: Installed) -> ShopRecord:
    """A shop's first install starts its first catalogue sync (a re-authorisation does not)."""
    if installed.first:
        from jobs.sync import request_sync

        request_sync(services, installed.record.domain, reason="install")
    return installed.record
