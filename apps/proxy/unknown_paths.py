"""What ``/v1/`` answers where no endpoint is: a JSON 404 in the API family's shape, DEBUG on or off.

The last URL pattern sends every path under ``/v1/`` that no endpoint matched here, so Django's
technical 404 page (an HTML page DEBUG would show) never reaches an API client, and no slash is
ever appended by a redirect (API paths run without CommonMiddleware). Clients of ``/v1/messages``
read Anthropic's error shape; every other path OpenAI's.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.providers.errors import OpenAIError
from apps.proxy.anthropic_inbound.response import anthropic_error_response
from apps.proxy.errors import error_response, with_request_id

ANTHROPIC_PATHS = "/v1/messages"


async def unknown_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    error = OpenAIError(f"Unknown endpoint: {request.method} {request.path}", status=404,
                        type="invalid_request_error", code="unknown_endpoint")
    return with_request_id(render_for_path(request.path, error))


def render_for_path(path: str, error: OpenAIError) -> HttpResponse:
    """``error`` in the shape the clients of ``path`` read."""
    if path == ANTHROPIC_PATHS or path.startswith(ANTHROPIC_PATHS + "/"):
        return anthropic_error_response(error)
    return error_response(error)
