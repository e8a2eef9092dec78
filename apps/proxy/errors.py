"""Every failure on the API path becomes OpenAI's error body here, and only here."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from apps.billing.ledger import new_request_id
from apps.providers.errors import OpenAIError
from edge_project.db import DatabaseUnavailable

logger = logging.getLogger(__name__)
# What a client is told to wait when the database cannot answer: a failing database is asked again
# (by one request at a time) as soon as the last try ends, so a second is enough to see it come back.
DATABASE_RETRY_AFTER_S = 1


class InvalidRequest(OpenAIError):
    status = 400
    type = "invalid_request_error"


class InvalidApiKey(OpenAIError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFound(OpenAIError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        # One message whether the model is unknown or not this key's: never reveal other tenants' models.
        super().__init__(f"The model `{model}` does not exist or you do not have access to it.", param="model")


class NoDeployment(OpenAIError):
    status = 503
    type = "service_unavailable"
    code = "no_deployment_available"


class PayloadTooLarge(OpenAIError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


def unexpected(exc: BaseException) -> OpenAIError:
    # Only a cold key lookup or a process's first routing table reaches the database on this path
    # (edge_project.db bounds both, and logs an outage once); while it cannot answer, say so with a
    # status clients retry instead of a 500 that reads like our bug.
    if isinstance(exc, DatabaseUnavailable):
        return database_unavailable()
    if isinstance(exc, DatabaseError):
        logger.warning("database error on the API path: %s", exc)
        return database_unavailable()
    logger.error("unexpected error on the API path", exc_info=exc)
    return internal_error()


def database_unavailable() -> OpenAIError:
    return OpenAIError("The gateway's database is unavailable; retry shortly.", status=503,
                       type="service_unavailable", code="database_unavailable",
                       headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


def internal_error() -> OpenAIError:
    return OpenAIError("The gateway failed to handle this request; it has been logged.", status=500)


def error_response(error: OpenAIError) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error.body()), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    return response


def openai_error_frame(error: OpenAIError) -> bytes:
    """A failure after a stream began (its headers are gone): one event, the way OpenAI reports one."""
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's own exceptions (on any DRF view) in OpenAI's shape rather than ``{"detail": …}``."""
    if not isinstance(exc, drf_exceptions.APIException):
        return None
    error = OpenAIError(str(exc.detail), status=exc.status_code, type="invalid_request_error", code=exc.default_code)
    return Response(error.body(), status=error.status)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return with_request_id(error_response(
        OpenAIError(f"Unknown endpoint: {request.method} {request.path}", status=404, type="invalid_request_error")
    ))


def api_server_error(request: HttpRequest) -> HttpResponse:
    return with_request_id(error_response(internal_error()))


def with_request_id(response: HttpResponse) -> HttpResponse:
    # Answers from outside the views' funnel have no ledger row, but support still needs an id to quote.
    response["x-request-id"] = new_request_id()
    return response
