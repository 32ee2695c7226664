"""The provisioning blueprint: every GET goes to `Provisioning.handle`, whose URL grammar is
`core.layout.parse_request` (one source of truth with `phoneprov options`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from .access import client_ip

blueprint = Blueprint("provisioning", __name__)


@blueprint.get("/", defaults={"path": ""})
@blueprint.get("/<path:path>")
def provision(path: str) -> Response:
    from .app import provisioning, reply_headers

    service = provisioning(current_app._get_current_object())  # type: ignore[attr-defined]
    reply = service.handle(
        request.path,
        request.args.get("mac"),
        client_ip(request.environ, service.trusted_proxies),
        request.headers.get("If-None-Match"),
    )
    response = Response(reply.body, status=reply.status)
    response.headers.clear()
    for name, value in reply_headers(reply):
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
