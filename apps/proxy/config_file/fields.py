"""Reading one entry of a config file field by field, recording every problem instead of stopping.

Problems read ``<entry>.<field>: <message>``, e.g. ``models[2] (gpt-4o).deployments[0].provider: …``.
Messages about secrets never quote the value.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlsplit

from apps.proxy.config_file.variables import VariableError, expand_variables

SLUG = re.compile(r"[-a-zA-Z0-9_]+")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
SMALL_INT_MAX: Final = 32767  # PositiveSmallIntegerField
PRICE_PLACES: Final = 6  # Deployment prices: DecimalField(max_digits=14, decimal_places=6)
PRICE_LIMIT: Final = Decimal(10) ** (14 - PRICE_PLACES)


class _Required:
    pass


REQUIRED: Final = _Required()


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
    """One mapping from the file. Getters return a placeholder on error; check ``ok`` before using them."""

    def __init__(self, raw: Mapping[Any, Any], *, where: str, fields: Collection[str], env: Mapping[str, str],
                 errors: list[str]) -> None:
        self.raw, self.where, self.env, self.errors = raw, where, env, errors
        self.ok = True
        for key in raw:
            if key not in fields:
                self.fail(str(key), _unknown_message("field", str(key), fields))

    def fail(self, field: str, message: str) -> None:
        self.errors.append(f"{self.where}.{field}: {message}")
        self.ok = False

    def _get(self, field: str, default: object) -> object:
        if field in self.raw:
            return self.raw[field]
        if default is REQUIRED:
            self.fail(field, "missing (required)")
        return default

    def text(self, field: str, *, max_length: int, slug: bool = False) -> str:
        value = self._get(field, REQUIRED)
        if not isinstance(value, str):
            if field in self.raw:
                self.fail(field, f"expected a string, got {type_name(value)}")
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
        value = self._get(field, None)
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

    def choice(self, field: str, choices: Collection[str], *, what: str, default: str | None = None) -> str:
        if default is not None and field not in self.raw:
            return default
        value = self.text(field, max_length=64)
        if value and value not in choices:
            self.fail(field, _unknown_message(what, value, choices))
        return value

    def flag(self, field: str, *, default: bool) -> bool:
        value = self._get(field, default)
        if not isinstance(value, bool):
            self.fail(field, f"expected true or false, got {type_name(value)}")
            return default
        return value

    def integer(self, field: str, *, default: int, maximum: int = SMALL_INT_MAX) -> int:
        value = self._get(field, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"expected a whole number, got {type_name(value)}")
            return default
        if not 0 <= value <= maximum:
            self.fail(field, f"must be between 0 and {maximum}, got {value}")
        return value

    def number(self, field: str, *, default: float, minimum: float) -> float:
        value = self._get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(field, f"expected a number, got {type_name(value)}")
            return default
        if value < minimum:
            self.fail(field, f"must be at least {minimum}, got {value}")
        return float(value)

    def price(self, field: str) -> Decimal:
        if field not in self.raw:
            self.fail(field, "missing (required)")
            return Decimal(0)
        price = self._price(field, self.raw[field])
        return Decimal(0) if price is None else price  # the placeholder is never used: the entry failed

    def optional_price(self, field: str) -> Decimal | None:
        value = self.raw.get(field)
        return None if value is None else self._price(field, value)

    def _price(self, field: str, value: object) -> Decimal | None:
        if isinstance(value, str) and (value := self.expand(field, value)) is None:
            return None
        problem, price = parse_price(value)
        if problem:
            self.fail(field, problem)
        return price

    def url(self, field: str, *, max_length: int) -> str:
        value = self.text(field, max_length=max_length)
        if value and (problem := url_problem(value)):
            self.fail(field, problem)
        return value

    def headers(self, field: str) -> dict[str, str]:
        value = self._get(field, {})
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
        value = self._get(field, REQUIRED)
        if not isinstance(value, list):
            if field in self.raw:
                self.fail(field, f"expected a list (use [] for none), got {type_name(value)}")
            return []
        return value


def parse_price(value: object) -> tuple[str, Decimal | None]:
    """A price from a decimal string or a YAML number. Numbers go through their shortest text form
    (0.15, not 0.1499999…), so no float arithmetic ever touches money."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f'expected a decimal string such as "0.15", got {type_name(value)}', None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return f"{value!r} is not a decimal number", None
    if not price.is_finite() or price < 0:
        return f"must be a non-negative decimal, got {value!r}", None
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PRICE_PLACES:
        return f"at most {PRICE_PLACES} decimal places, got {value!r}", None
    if price >= PRICE_LIMIT:
        return f"must be below {PRICE_LIMIT} USD per million tokens, got {value!r}", None
    return "", price


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
