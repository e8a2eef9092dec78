"""Reading one entry of a config file field by field, recording every problem instead of stopping.

Problems read ``<entry>.<field>: <message>``, e.g. ``models[2] (gpt-4o).deployments[0].provider: …``.
Messages about secrets never quote the value. Defaults, bounds and decimal places are the model
field's the entry's field is stored in (its ``EntryShape``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from apps.proxy.config_file.shapes import EntryShape
from apps.proxy.config_file.variables import VariableError, expand_variables
from edge_project.model_fields import Number, decimal_shape

SLUG = re.compile(r"[-a-zA-Z0-9_]+")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


def type_name(value: object) -> str:
    """What was found instead, for messages. Numbers are quoted; strings never are (they may be secrets)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def entry_label(section: str, index: int, raw: object, name_field: str) -> str:
    name = raw.get(name_field) if isinstance(raw, Mapping) else None
    return f"{section}[{index}] ({name})" if isinstance(name, str) and name else f"{section}[{index}]"


class EntryReader:
    """One mapping from the file. Getters return a placeholder on error; check ``ok`` before using them.

    A reader made by ``child`` (a deployment of a model, a tenant's ``limits``) reports its problems
    under its parent's name, and a problem in it makes its parent not ``ok`` either.
    """

    def __init__(self, raw: Mapping[Any, Any], *, where: str, shape: EntryShape, env: Mapping[str, str],
                 errors: list[str], parent: EntryReader | None = None) -> None:
        self.raw, self.where, self.shape, self.env, self.errors = raw, where, shape, env, errors
        self.parent = parent
        self.ok = True
        for key in raw:
            if key not in shape.fields:
                self.fail(str(key), _unknown_message("field", str(key), shape.fields))

    def child(self, raw: Mapping[Any, Any], field: str, shape: EntryShape) -> EntryReader:
        return EntryReader(raw, where=f"{self.where}.{field}", shape=shape, env=self.env, errors=self.errors,
                           parent=self)

    def mapping(self, field: str, shape: EntryShape) -> EntryReader:
        """An optional sub-entry, such as a tenant's ``limits``; read as empty when absent or invalid."""
        value = self.raw.get(field, {})
        if not isinstance(value, Mapping):
            self.fail(field, f"expected a mapping, got {type_name(value)}")
            value = {}
        return self.child(value, field, shape)

    def fail(self, field: str, message: str) -> None:
        self.errors.append(f"{self.where}.{field}: {message}")
        reader: EntryReader | None = self
        while reader is not None:
            reader.ok = False
            reader = reader.parent

    def _get(self, field: str) -> object:
        """The field's value, else its model field's default; a field with no default is required."""
        if field in self.raw:
            return self.raw[field]
        if not self.shape.has_default(field):
            self.fail(field, "missing (required)")
            return None
        return self.shape.default(field)

    def text(self, field: str, *, max_length: int, slug: bool = False) -> str:
        value = self.raw.get(field)
        if not isinstance(value, str):
            self.fail(field, f"expected a string, got {type_name(value)}" if field in self.raw
                      else "missing (required)")
            return ""
        value = self.expand(field, value)
        if value is None:
            return ""
        if not value or value != value.strip():
            self.fail(field, "must not be empty or start or end with spaces")
        elif len(value) > max_length:
            self.fail(field, f"longer than {max_length} characters")
        elif slug and not SLUG.fullmatch(value):
            self.fail(field, f"{value!r} is not a slug (letters, digits, '-' and '_' only)")
        return value

    def secret(self, field: str) -> str | None:
        """An optional secret: None when absent, so the stored one is kept."""
        value = self.raw.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(field, f"expected a string, got {type_name(value)}")
            return None
        return self.expand(field, value)

    def expand(self, field: str, value: str) -> str | None:
        try:
            return expand_variables(value, self.env)
        except VariableError as exc:
            self.fail(field, str(exc))
            return None

    def choice(self, field: str, choices: Collection[str], *, what: str) -> str:
        if field not in self.raw and self.shape.has_default(field):
            return str(self.shape.default(field))
        value = self.text(field, max_length=64)
        if value and value not in choices:
            self.fail(field, _unknown_message(what, value, choices))
        return value

    def flag(self, field: str) -> bool:
        value = self._get(field)
        if not isinstance(value, bool):
            if field in self.raw:  # else _get has said it is missing
                self.fail(field, f"expected true or false, got {type_name(value)}")
            return False
        return value

    def integer(self, field: str) -> int:
        value = self._get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            if field in self.raw:  # else _get has said it is missing
                self.fail(field, f"expected a whole number, got {type_name(value)}")
            return 0
        self._check_bounds(field, value)
        return value

    def optional_integer(self, field: str) -> int | None:
        """None when absent (or written as null): the column's blank, e.g. an unlimited rate."""
        return None if self.raw.get(field) is None else self.integer(field)

    def number(self, field: str) -> float:
        value = self._get(field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            if field in self.raw:  # else _get has said it is missing
                self.fail(field, f"expected a number, got {type_name(value)}")
            return 0.0
        self._check_bounds(field, value)
        return float(value)

    def _check_bounds(self, field: str, value: Number) -> None:
        bounds = self.shape.bounds(field)
        if bounds.minimum is not None and value < bounds.minimum:
            self.fail(field, f"must be at least {number_text(bounds.minimum)}, got {value}")
        elif bounds.maximum is not None and value > bounds.maximum:
            self.fail(field, f"must be at most {number_text(bounds.maximum)}, got {value}")

    def decimal(self, field: str, *, unit: str) -> Decimal:
        """A required exact amount, e.g. a price; see ``parse_decimal``."""
        if field not in self.raw:
            self.fail(field, "missing (required)")
            return Decimal(0)
        amount = self.optional_decimal(field, unit=unit)
        return Decimal(0) if amount is None else amount  # the placeholder is never used: the entry failed

    def optional_decimal(self, field: str, *, unit: str) -> Decimal | None:
        value = self.raw.get(field)
        if isinstance(value, str) and (value := self.expand(field, value)) is None:
            return None
        if value is None:
            return None
        places, limit = decimal_shape(self.shape.model, self.shape.stored(field))
        problem, amount = parse_decimal(value, places=places, limit=limit, unit=unit)
        if problem:
            self.fail(field, problem)
        return amount

    def url(self, field: str, *, max_length: int) -> str:
        value = self.text(field, max_length=max_length)
        if value and (problem := url_problem(value)):
            self.fail(field, problem)
        return value

    def headers(self, field: str) -> dict[str, str]:
        value = self._get(field)
        if not isinstance(value, Mapping):
            self.fail(field, f"expected a mapping of header names to values, got {type_name(value)}")
            return {}
        headers: dict[str, str] = {}
        for name, header_value in value.items():
            where = f"{field}.{name}"
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                self.fail(where, "not a valid HTTP header name")
            elif not isinstance(header_value, str):
                self.fail(where, f"expected a string, got {type_name(header_value)}")
            elif (expanded := self.expand(where, header_value)) is None:
                continue
            elif "\r" in expanded or "\n" in expanded:
                self.fail(where, "header values must not contain line breaks")
            else:
                headers[name] = expanded
        return headers

    def entries(self, field: str) -> list[object]:
        """A required list of sub-entries, such as a model's deployments."""
        value = self.raw.get(field)
        if not isinstance(value, list):
            self.fail(field, f"expected a list (use [] for none), got {type_name(value)}" if field in self.raw
                      else "missing (required)")
            return []
        return value


def number_text(value: Number) -> str:
    """1.0 as "1", 0.1 as "0.1", 2147483647 in full."""
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_decimal(value: object, *, places: int, limit: Decimal, unit: str) -> tuple[str, Decimal | None]:
    """A non-negative amount of at most ``places`` decimal places below ``limit`` (a column's shape),
    from a decimal string or a YAML number. Numbers go through their shortest text form (0.15, not
    0.1499999…), so no float arithmetic ever touches money."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f'expected a decimal string such as "0.15", got {type_name(value)}', None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return f"{value!r} is not a decimal number", None
    if not amount.is_finite() or amount < 0:
        return f"must be a non-negative decimal, got {value!r}", None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return f"at most {places} decimal places, got {value!r}", None
    if amount >= limit:
        return f"must be below {limit} {unit}, got {value!r}", None
    return "", amount


def url_problem(value: str) -> str:
    # Not Django's URLValidator: it refuses single-label hosts, and http://vllm:8000/v1 on a private
    # network is exactly the kind of upstream this gateway fronts.
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"{value!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        return f"{value!r} is not an http(s) URL"
    if parts.query or parts.fragment:
        return f"{value!r}: a base URL takes no query string or fragment"
    return ""


def _unknown_message(what: str, value: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(known)}"
    return f"unknown {what} {value!r} ({hint})"
