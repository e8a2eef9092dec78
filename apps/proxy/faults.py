"""Whose fault a request's failure was (``Fault``): the metrics' ``error_type``, decided here only.

A request ends with its error's code (or type, when it has none) and HTTP status, as its ledger row
records them. The code says most; where a provider's own error reached the client, the attempt that
got it already says whether it was the provider's failure or the request's (``apps.routing.attempts``).
"""

from __future__ import annotations

from collections.abc import Sequence

from apps.providers.errors import Fault
from apps.routing.attempts import Attempt

CLIENT_CLOSED_REQUEST = 499  # the client hung up (apps.proxy.streaming)
# Refused by a limit the operator (or the request itself) set, not by anything failing.
POLICY_CODES = {
    "rate_limit_exceeded": "rate_limit",  # rpm, tpm, concurrency (apps.proxy.admission)
    "insufficient_quota": "budget",  # a key's or tenant's budget
    "max_cost_exceeded": "max_cost",  # the request's own x-edge-max-cost-usd
    "too_many_failed_authentications": "auth_throttle",  # apps.proxy.auth_throttle
}
# Raised by the gateway about providers, without an attempt of their own (or after one, for streams).
PROVIDER_CODES = {"deployments_unavailable", "request_deadline_exceeded", "stream_deadline_exceeded"}
# The gateway's own failures: its database, a model configured without deployments, its bugs.
GATEWAY_CODES = {"database_unavailable", "no_deployment_available", "server_error"}


def fault_of(code: str, http_status: int, attempts: Sequence[Attempt] = ()) -> Fault:
    """The fault of a request that ended with ``code`` (its error's code, else its type) and status."""
    if http_status == CLIENT_CLOSED_REQUEST:
        return Fault.CLIENT
    if code in POLICY_CODES:
        return Fault.POLICY
    if attempts and attempts[-1].outcome == code and attempts[-1].fault:
        return Fault(attempts[-1].fault)  # the provider's answer, as routing judged it
    if code in PROVIDER_CODES or code.startswith("upstream_"):
        return Fault.PROVIDER
    if code in GATEWAY_CODES or http_status >= 500:
        return Fault.GATEWAY
    return Fault.CLIENT
