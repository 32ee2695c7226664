"""The provisioning blueprint: every GET/HEAD goes to `endpoint.respond`, the one request path;
Flask adds only what phones never need (405 for other methods, 413 for bodies)."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from .endpoint import Provisioning, respond

EXTENSION = "phoneprov"

blueprint = Blueprint("provisioning", __name__)


def provisioning(app: Flask) -> Provisioning:
    """The `Provisioning` an app was made with."""
    service: Provisioning = app.extensions[EXTENSION]
    return service


@blueprint.get("/", defaults={"path": ""})
@blueprint.get("/<path:path>")
def provision(path: str) -> Response:
    status, headers, body = respond(provisioning(current_app), request.environ)
    response = Response(body, status=status)
    response.headers.clear()
    for name, value in headers:
        response.headers[name] = value
    return response


@blueprint.app_errorhandler(HTTPException)
def plain_error(error: HTTPException) -> Response:
    """Short plain-text errors (405, 413, 400...): no HTML, nothing about the server."""
    code = error.code or 500
    body = f"{code} {error.name.lower()}\n".encode()
    response = Response(body, status=code, content_type="text/plain; charset=utf-8")
    if code == 405:
        response.headers["Allow"] = "GET, HEAD"
    return response
