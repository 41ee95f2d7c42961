"""JSON errors of the API: one shape, a stable code and a message, from one function."""
from flask import Response
from flask import jsonify
from werkzeug.exceptions import HTTPException

# Stable codes for plain HTTP errors (routing, limits, sizes).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "busy",
}


def error_response(status: int, code: str, message: str,
                   fields: dict[str, list[str]] | None = None, **extra: str) -> Response:
    """Answer ``{"error": {"code", "message"[, "fields"][, extra...]}}`` with the status."""
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    response = jsonify(error=error)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return response


def http_error_response(error: HTTPException) -> Response:
    """Turn a werkzeug HTTP error under /api/ into the API's JSON error."""
    return error_response(error.code, HTTP_CODES.get(error.code, "error"), error.description)
