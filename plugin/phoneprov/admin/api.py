"""The JSON API under /api/v1: the same data the pages show (`service.AdminService`).

MACs in any notation in URLs; in answers lower-case colon form. Errors as
`{"error": "message"}` with 400 (bad input), 401/403 (`auth`), 404, 409, 500 (the appliance's
configuration is broken: the message names where).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from ..core.errors import ConfigError, InputError
from .auth import error
from .service import AdminService, ApplyFailed, Conflict, NotFound

blueprint = Blueprint("api", __name__)
DEFAULT_LIMIT = 100


def _service() -> AdminService:
    from .app import admin_service

    return admin_service(current_app)


def _who() -> str:
    return str(g.get("user") or "?")


@blueprint.errorhandler(InputError)
def _bad_input(e: InputError) -> Response:
    return error(400, str(e))


@blueprint.errorhandler(NotFound)
def _not_found(e: NotFound) -> Response:
    return error(404, str(e))


@blueprint.errorhandler(Conflict)
def _conflict(e: Conflict) -> Response:
    return error(409, str(e))


@blueprint.errorhandler(ApplyFailed)
def _apply_failed(e: ApplyFailed) -> Response:
    return error(500, str(e))


@blueprint.errorhandler(ConfigError)
def _config_error(e: ConfigError) -> Response:
    current_app.logger.error("admin API: %s", e)
    return error(500, f"the appliance's configuration: {e}")


@blueprint.route("/phones")
def phones() -> Any:
    return {"phones": _service().phones()}


@blueprint.route("/phones/<mac>")
def phone(mac: str) -> Any:
    reveal = request.args.get("reveal", "") in ("1", "true", "yes")
    return _service().phone(mac, reveal=reveal, who=_who())


@blueprint.route("/phones/<mac>/backup")
def backup(mac: str) -> Any:
    name, body = _service().backup(mac, who=_who())
    response = Response(body, content_type="application/xml; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@blueprint.route("/phones/<mac>/resync", methods=["POST"])
def resync(mac: str) -> Any:
    return _service().resync(mac, who=_who())


@blueprint.route("/discovered")
def discovered() -> Any:
    return {"discovered": _service().discovered()}


@blueprint.route("/discovered/<mac>/enrol", methods=["POST"])
def enrol(mac: str) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError('send a JSON object: {"model": "D200", "profile": "default"}')
    model, profile = body.get("model"), body.get("profile")
    if not isinstance(model, str) or not isinstance(profile, str):
        raise InputError('"model" and "profile" are required strings')
    line1 = body.get("line1")
    if line1 is not None and not isinstance(line1, dict):
        raise InputError('"line1" must be an object: {"user", "password", "display_name"}')
    return _service().enrol(mac, model, profile, line1=line1, who=_who()), 201


@blueprint.route("/fetches")
def fetches() -> Any:
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise InputError("limit must be a whole number") from None
    return {"fetches": _service().fetches(request.args.get("mac") or None, limit)}


@blueprint.route("/doctor")
def doctor() -> Any:
    return {"findings": _service().doctor()}


@blueprint.route("/models")
def models() -> Any:
    return _service().models()


@blueprint.route("/sync")
def sync() -> Any:
    """The live revision and the last refused one (as `phoneprov sync --status --json`)."""
    from ..sync.report import sync_status

    return sync_status(_service().config.sync)
