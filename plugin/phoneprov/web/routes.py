"""The provisioning blueprint: every GET/HEAD goes to `endpoint.respond`, the one request path;
what phones never send (other methods 405, OPTIONS too; bodies 413) is turned away first by
`endpoint.rejection`, the same function the fast dispatch's answers come from."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from .endpoint import Provisioning, rejection, respond

EXTENSION = "phoneprov"

blueprint = Blueprint("provisioning", __name__)


def provisioning(app: Flask) -> Provisioning:
    """The `Provisioning` an app was made with."""
    service: Provisioning = app.extensions[EXTENSION]
    return service


@blueprint.before_app_request
def turn_away() -> Response | None:
    """405/413 before routing: also for OPTIONS and methods no route knows."""
    rejected = rejection(request.environ)
    return None if rejected is None else _response(*rejected)


@blueprint.get("/", defaults={"path": ""}, provide_automatic_options=False)
@blueprint.get("/<path:path>", provide_automatic_options=False)
def provision(path: str) -> Response:
    return _response(*respond(provisioning(current_app), request.environ))


def _response(status: str, headers: list[tuple[str, str]], body: bytes) -> Response:
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
