"""Log formatters: JSON lines for log shippers (the default), plain text for people (``make run``).

Both redact (``edge_project.redaction``) everything that might carry a secret or personal data: the message
with its arguments, every extra field a gateway-made id is not, and the traceback text, exception messages
included. While tracing is on, a line carries the trace and span ids of the span it was written under.
Which one applies is ``EDGE_LOG_FORMAT`` (settings LOGGING).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from edge_project.redaction import redact
from edge_project.tracing import ids_of

# Not written: logging's own attributes, and uvicorn's copy of its message with terminal colours.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "fields", "color_message"}
# Fields of the request line (apps.proxy.request_log) made by the gateway or its operators' configuration,
# never from a client's or provider's text: written as they are, which keeps a line's redaction to a few µs.
# Everything else (the message, the model a client asked for, an error code a provider sent) is redacted.
_TRUSTED = frozenset({"request_id", "trace_id", "span_id", "key_prefix", "status", "usage_source", "endpoint",
                      "tenant", "provider", "upstream_model", "cost_usd", "cache", "route"})


def fields_of(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The record as redacted fields: level, logger, message, the extras, the traceback, the trace ids."""
    fields: dict[str, Any] = {
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": redact(record.getMessage()),
    }
    extras = getattr(record, "fields", None)
    if not isinstance(extras, dict):
        extras = vars(record)
    for key, value in extras.items():  # a request line's fields (apps.proxy.request_log), else logging's extras
        if key not in _STANDARD:
            fields[key] = value if key in _TRUSTED else _clean(value)
    if record.exc_info:
        fields["exc"] = redact(formatter.formatException(record.exc_info))
    elif record.exc_text:
        fields["exc"] = redact(record.exc_text)
    if "trace_id" not in fields and (ids := ids_of()) is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(), **fields_of(record, self)}
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …``, then the traceback: for reading in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = fields_of(record, self)
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{key}={value}" for key, value in fields.items()
                          if key not in {"level", "logger", "message", "exc"} and value is not None)
        line = f"{when} {record.levelname:<7} {record.name}: {fields['message']}" + (f"  {extras}" if extras else "")
        return f"{line}\n{fields['exc']}" if "exc" in fields else line
