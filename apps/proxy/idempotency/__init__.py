"""Idempotency keys: a repeat of a request gets the first one's response instead of running again.

``claim()``, ``finish()`` and ``release()`` (service.py) are what the pipeline calls; the other modules
are the parts they are made of: the errors a client can get, the stored response, the in-process store
and the Redis one.
"""

from apps.proxy.idempotency.errors import (
    IdempotencyError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotentResponseTooLarge,
    InvalidIdempotencyKey,
)
from apps.proxy.idempotency.service import Claim, claim, finish, release, waiting
from apps.proxy.idempotency.stored import StoredResponse

__all__ = [
    "Claim",
    "IdempotencyError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "IdempotentResponseTooLarge",
    "InvalidIdempotencyKey",
    "StoredResponse",
    "claim",
    "finish",
    "release",
    "waiting",
]
