"""What a client hears about its Idempotency-Key: OpenAI errors, so the pipeline's funnel renders them in
the endpoint's shape. Messages follow Stripe's, whose semantics these are."""

from __future__ import annotations

from apps.providers.errors import OpenAIError

MAX_KEY_CHARS = 255
HEADER = "Idempotency-Key"


class IdempotencyError(OpenAIError):
    type = "invalid_request_error"


class InvalidIdempotencyKey(IdempotencyError):
    status = 400
    code = "invalid_value"

    def __init__(self) -> None:
        super().__init__(f"The {HEADER} header must be 1 to {MAX_KEY_CHARS} characters, none of them a control "
                         "character.", param=HEADER)


class IdempotencyKeyReused(IdempotencyError):
    status = 422
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Keys for idempotent requests can only be used with the same parameters they were first "
                         f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                         param=HEADER)


class IdempotencyKeyInUse(IdempotencyError):
    """409, and Retry-After: the first request may finish any moment, and SDKs retry a 409 after it."""

    status = 409
    code = "idempotency_key_in_use"

    def __init__(self, key: str) -> None:
        super().__init__(f"There is currently another in-progress request using the {HEADER} '{key}'. "
                         "Retry once it has completed.", param=HEADER, headers={"Retry-After": "1"})


class IdempotentResponseTooLarge(IdempotencyError):
    """422, not 409: the first request completed, and no retry will ever replay it."""

    status = 422
    code = "idempotency_response_too_large"

    def __init__(self, key: str, request_id: str) -> None:
        first = f" (request id {request_id})" if request_id else ""
        super().__init__(f"The request first sent with the {HEADER} '{key}'{first} completed, but its response was "
                         "too large to keep for replay. Use a new key to send the request again.", param=HEADER)


def check_key(key: str) -> None:
    """Raise InvalidIdempotencyKey unless ``key`` is 1 to 255 characters without control characters."""
    if not 0 < len(key) <= MAX_KEY_CHARS or any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in key):
        raise InvalidIdempotencyKey()
