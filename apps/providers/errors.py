"""The one error type of the gateway: anything that should reach the client as OpenAI's error body.

OpenAI clients read ``{"error": {"message", "type", "param", "code"}}`` and the HTTP status; every
failure on the API path ends as one of these, rendered in ``apps.proxy.errors``.
"""

from __future__ import annotations

import enum


class OpenAIError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.status
        self.type = type if type is not None else self.type
        self.code = code if code is not None else self.code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ProviderError(OpenAIError):
    """An upstream call failed. ``retryable`` says whether another attempt may succeed.

    ``upstream_status`` is what the provider answered (None for timeouts and broken connections);
    ``status`` is what the client gets.
    """

    status = 502
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        upstream_status: int | None = None,
        retry_after_s: float | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retryable = retryable
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s


class Fault(enum.StrEnum):
    """Whose fault a failure was: the one closed vocabulary of the metrics' ``error_type`` label.

    Routing tells a provider's failures from the request's own (``apps.routing.attempts``); the proxy
    classifies every failure of a request (``apps.proxy.faults``).
    """

    CLIENT = "client"  # the request itself: malformed, unknown model, its own 4xx from a provider, a hang-up
    POLICY = "policy"  # refused by a limit: rate limits, concurrency, budgets, the request's own cost cap
    PROVIDER = "provider"  # an upstream failed or was unavailable (errors, timeouts, open breakers)
    GATEWAY = "gateway"  # the gateway failed: its database, its configuration, its own bugs
