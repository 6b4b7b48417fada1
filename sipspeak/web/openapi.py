"""The OpenAPI 3 document of /api/v1, built from the route table."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .. import __version__
from .auth import ALL_ROLES, ROUTE_TABLE, RouteSpec, route
from .errors import json_ok

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "field": {"type": ["string", "null"]}},
    }},
}


def openapi_path(path: str) -> str:
    """``/api/v1/users/{id:\\d+}`` → ``/api/v1/users/{id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _operation(spec: RouteSpec) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer"} if name == "id" or name.endswith("_id") else {"type": "string"}}
        for name in _PARAM.findall(spec.path)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                   for name in spec.query]
    ok: dict[str, Any] = {"description": "OK"}
    if spec.response_schema is not None:
        ok["content"] = {"application/json": {"schema": spec.response_schema}}
    error = {"description": "error", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {"200": ok, "401": error, "403": error}
    if spec.method != "GET":
        responses.update({"400": error, "404": error, "409": error, "422": error})
    elif parameters:
        responses["404"] = error
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "description": "roles: " + ", ".join(spec.roles),
        "tags": [spec.path.split("/")[3] if spec.path.count("/") >= 3 else "api"],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if spec.request_schema is not None:
        operation["requestBody"] = {"required": True, "content": {
            spec.request_media: {"schema": spec.request_schema}}}
    return operation


def build_document(specs: list[RouteSpec]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec.api:
            continue
        paths.setdefault(openapi_path(spec.path), {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SipSpeak API", "version": __version__,
                 "description": "Every action of the admin pages. Authenticate with "
                                "`Authorization: Bearer <token>` (`sipspeak token create`)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API."""
    return json_ok(build_document(request.app[ROUTE_TABLE]))


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/api/v1/openapi.json", openapi_document, roles=ALL_ROLES, api=True)
