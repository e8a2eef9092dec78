"""Error pages: OpenAI's JSON error body on API paths, Django's pages everywhere else."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from apps.proxy.errors import api_not_found, api_server_error


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(settings.API_PATH_PREFIXES):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(settings.API_PATH_PREFIXES):
        return api_server_error(request)
    return defaults.server_error(request)
