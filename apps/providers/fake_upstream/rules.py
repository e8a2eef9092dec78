"""Behaviour knobs and the per-model rule table.

A rule is the CLI defaults with some knobs overridden, chosen by the request's
`model`: the model's own rule first, then the rule for "*", then the defaults.

`fail_rate` is the fraction of matching requests that misbehave at all. It gates
every fault knob (`fail_status`, `hang`, `reset`, `malformed`, `missing_fields`,
`huge_body_mb`, `cut_stream_after`) but not the pacing ones (`latency_ms`,
`chunk_delay_ms`, `dribble_ms`). When several faults are set, the first of
reset, hang, fail_status, malformed, missing_fields, huge_body_mb wins.

Each rule draws from its own random.Random seeded with the server's seed when
the rule is set, so a test that sets a rule sees the same sequence every run.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

WILDCARD_MODEL = "*"


@dataclass(frozen=True)
class Knobs:
    """How the fake behaves for one model. The POST /_fake/rules keys are these names."""

    latency_ms: float = 0  # wait this long before answering at all
    jitter_ms: float = 0  # plus a random 0..jitter_ms on top
    stream_chunks: int | None = None  # content deltas per stream; None = one per word
    chunk_delay_ms: float = 0  # pause between stream events
    fail_status: int | None = None  # answer with this error status, in the route's shape
    fail_rate: float = 1.0  # fraction of requests the fault knobs hit
    retry_after: int | None = None  # Retry-After seconds on fail_status errors
    hang: bool = False  # read the request, never answer, wait for the client to leave
    reset: bool = False  # read the request, then close with a TCP RST
    malformed: bool = False  # 200 whose body (or one stream event) is not JSON
    missing_fields: bool = False  # 200 with valid JSON lacking choices / content / data
    huge_body_mb: float = 0  # 200 whose reply text is this many MB
    dribble_ms: float = 0  # send the body one byte at a time, this far apart
    cut_stream_after: int | None = None  # drop a stream after N content events, unterminated
    no_usage: bool = False  # never report usage, even when include_usage is asked
    tool_call: bool = False  # call the first offered tool when tool_choice leaves it to the model
    reply_words: int = 12  # words per reply, before max_tokens
    cached_tokens: int = 0  # prompt tokens reported as read from cache (capped at prompt)
    cache_write_tokens: int = 0  # Anthropic only: prompt tokens reported as written to the cache
    require_key: str | None = None  # 401 unless Bearer / x-api-key carries this key
    error_message: str | None = None  # the message of fail_status errors instead of the provider's usual one
    # OpenAI wire: report these usage fields instead, whatever they hold (a hostile or broken provider's
    # negative, huge, fractional or textual counts), e.g. {"prompt_tokens": -5}.
    reported_usage: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RuleError(ValueError):
    """Control-API input that does not describe a rule; shown to the caller as a 400."""


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RuleError("must be a number >= 0")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError("must be an integer >= 0")
    return value


def _positive_count(value: object) -> int:
    count = _count(value)
    if count < 1:
        raise RuleError("must be an integer >= 1")
    return count


def _fraction(value: object) -> float:
    fraction = _number(value)
    if fraction > 1:
        raise RuleError("must be a number between 0 and 1")
    return fraction


def _error_status(value: object) -> int:
    status = _count(value)
    if not 400 <= status <= 599:
        raise RuleError("must be an HTTP error status between 400 and 599")
    return status


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise RuleError("must be true or false")
    return value


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RuleError("must be a JSON object")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RuleError("must be a non-empty string")
    return value


# The knobs that may be null, which resets them to "off".
_NULLABLE = {"stream_chunks", "fail_status", "retry_after", "cut_stream_after", "require_key", "reported_usage",
             "error_message"}

_PARSERS: dict[str, Callable[[object], object]] = {
    "latency_ms": _number, "jitter_ms": _number, "stream_chunks": _positive_count,
    "chunk_delay_ms": _number, "fail_status": _error_status, "fail_rate": _fraction,
    "retry_after": _count, "hang": _flag, "reset": _flag, "malformed": _flag,
    "missing_fields": _flag, "huge_body_mb": _number, "dribble_ms": _number,
    "cut_stream_after": _count, "no_usage": _flag, "tool_call": _flag,
    "reply_words": _positive_count, "cached_tokens": _count, "require_key": _text,
    "cache_write_tokens": _count, "reported_usage": _object, "error_message": _text,
}
assert set(_PARSERS) == {f.name for f in dataclasses.fields(Knobs)}, "a knob lacks a parser"


def parse_knobs(overrides: Mapping[str, object], base: Knobs) -> Knobs:
    """`base` with `overrides` applied, each one checked; raises RuleError naming the bad knob."""
    changes: dict[str, object] = {}
    for name, value in overrides.items():
        parser = _PARSERS.get(name)
        if parser is None:
            known = ", ".join(sorted(_PARSERS))
            raise RuleError(f"unknown knob {name!r}; known knobs: {known}")
        if value is None and name in _NULLABLE:
            changes[name] = None
            continue
        try:
            changes[name] = parser(value)
        except RuleError as exc:
            raise RuleError(f"knob {name!r} {exc}") from None
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def parse_rule(payload: object, base: Knobs) -> tuple[str, Knobs]:
    """The (model, knobs) pair described by a POST /_fake/rules body."""
    if not isinstance(payload, dict):
        raise RuleError("a rule must be a JSON object")
    overrides = dict(payload)
    model = overrides.pop("model", None)
    if not isinstance(model, str) or not model:
        raise RuleError('a rule needs "model": an upstream model name or "*"')
    return model, parse_knobs(overrides, base)


# The knobs fail_rate gates, at their "off" values.
_NO_FAULTS: dict[str, Any] = {
    "fail_status": None, "hang": False, "reset": False, "malformed": False,
    "missing_fields": False, "huge_body_mb": 0, "cut_stream_after": None,
}


class Rule:
    """Knobs plus the random source that decides which requests they hit."""

    def __init__(self, knobs: Knobs, seed: int) -> None:
        self.knobs = knobs
        self._random = random.Random(seed)
        self._calm_knobs = dataclasses.replace(knobs, **_NO_FAULTS)

    def draw(self) -> Knobs:
        """The knobs for the next request: without the faults if fail_rate spares it."""
        rate = self.knobs.fail_rate
        misbehaves = rate >= 1 or (rate > 0 and self._random.random() < rate)
        return self.knobs if misbehaves else self._calm_knobs

    def delay_seconds(self) -> float:
        jitter = self._random.uniform(0, self.knobs.jitter_ms) if self.knobs.jitter_ms else 0
        return (self.knobs.latency_ms + jitter) / 1000


class RuleTable:
    def __init__(self, defaults: Knobs, seed: int) -> None:
        self.defaults = defaults
        self._seed = seed
        self._default_rule = Rule(defaults, seed)
        self._rules: dict[str, Rule] = {}

    def set_rule(self, model: str, knobs: Knobs) -> None:
        self._rules[model] = Rule(knobs, self._seed)

    def clear(self) -> None:
        self._rules.clear()
        self._default_rule = Rule(self.defaults, self._seed)

    def rule_for(self, model: str) -> Rule:
        return self._rules.get(model) or self._rules.get(WILDCARD_MODEL) or self._default_rule

    def describe(self) -> dict[str, Any]:
        return {
            "defaults": self.defaults.as_dict(),
            "rules": {model: rule.knobs.as_dict() for model, rule in self._rules.items()},
        }
