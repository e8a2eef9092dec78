"""Response headers: those whose values come partly from outside, and those admission reports.

``set_header`` is for values from outside (configuration, a client's model name). Django refuses a
value with a line break by raising while the response is built: a 500 for a request whose ledger
row already says 200. Names that reach headers are checked where they enter
(``apps.proxy.parsing``, config validation); this is the last line, so no value can ever turn an
answer into an error.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from django.http.response import HttpResponseBase

from apps.billing.admission import Quota, Ticket

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def set_header(response: HttpResponseBase, name: str, value: str) -> None:
    response[name] = _CONTROL.sub("?", value)


def quota_headers(requests: Quota | None, tokens: Quota | None, budget_remaining: Decimal | None) -> dict[str, str]:
    """OpenAI's six x-ratelimit-* headers for the tightest limits, and the tightest budget's remainder."""
    headers = {}
    for kind, quota in (("requests", requests), ("tokens", tokens)):
        if quota is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(quota.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(quota.remaining, 0))
            headers[f"x-ratelimit-reset-{kind}"] = go_duration(quota.reset_s)
    if budget_remaining is not None:
        headers["x-edge-budget-remaining-usd"] = f"{max(budget_remaining, Decimal(0)):f}"
    return headers


def stamp_quota(response: HttpResponseBase, ticket: Ticket | None) -> None:
    if ticket is not None:
        for name, value in quota_headers(ticket.requests, ticket.tokens, ticket.budget_remaining_usd).items():
            response[name] = value


def go_duration(seconds: float) -> str:
    """A duration as OpenAI's rate-limit headers write it (Go's format): ``20ms``, ``1s``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours >= 1:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes >= 1 else text
