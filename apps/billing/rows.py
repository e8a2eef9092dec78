"""Ledger rows as the spool and its quarantine hold them: one JSON object a line.

``encode_line()`` never refuses a row. The request path produces JSON-native rows, so the fast path
is one ``orjson.dumps``; a value JSON cannot carry (a lone surrogate, an integer beyond 64 bits, a
type that is not JSON's) is written in a form it can (escaped text, digits as text), because a row
on disk beats a row lost: the database then refuses the value, and the row goes to the quarantine
with its reason, where an operator can read and fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

Row = dict[str, Any]

_INT_RANGE = range(-(2**63), 2**64)  # what orjson writes as a JSON number


@dataclass(frozen=True, slots=True)
class Refusal:
    """A row the database refused for a reason of its own, and that reason (its message, one line)."""

    row: Row
    reason: str


# Commits rows idempotently (by request id) and returns those the database refused; raises, to be
# retried later with every row kept, when the database cannot take rows at all (it is unreachable).
Insert = Callable[[list[Row]], list[Refusal]]


def encode_line(value: Any) -> bytes:
    """``value`` as one line of JSON, newline included."""
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError is one
        return orjson.dumps(_json_safe(value), option=orjson.OPT_APPEND_NEWLINE)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate becomes "\\ud800"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if value in _INT_RANGE else str(value)
    if isinstance(value, dict):
        return {_json_safe(str(key)): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return _json_safe(str(value))

