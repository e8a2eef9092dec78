"""How a request's route is told: the ``x-edge-route`` header and the ledger's ``attempts`` column.

The header is one line, compact and parseable, naming no secrets::

    failover; openai-a/gpt-4o=upstream_error 12ms, openai-b/gpt-4o=ok 31ms

strategy, ``;``, then each attempt in order as ``provider/upstream_model=outcome duration``. An
attempt of a fallback model is prefixed with that model, ``gpt-4o-128k:openai-b/gpt-4o-128k=ok 40ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.routing.attempts import Attempt


def route_header(strategy: str, attempts: Sequence[Attempt]) -> str:
    steps = ", ".join(
        f"{_fallback_prefix(attempt)}{attempt.target.label}={attempt.outcome} {attempt.duration_ms:.0f}ms"
        for attempt in attempts
    )
    return f"{strategy}; {steps}" if steps else strategy


def _fallback_prefix(attempt: Attempt) -> str:
    return f"{attempt.model}:" if attempt.fallback else ""


def attempts_record(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    """The attempts as the ledger stores them (JSON)."""
    return [
        {"deployment_id": attempt.target.deployment_id, "provider": attempt.target.upstream.provider_name,
         "upstream_model": attempt.target.upstream_model, "model": attempt.model, "outcome": attempt.outcome,
         "ms": round(attempt.duration_ms, 1)}
        for attempt in attempts
    ]
