"""The fake's own state and the /_fake control API that tests use to steer and inspect it.

  POST   /_fake/rules            {"model": "<name or *>", knob: value, ...} sets that model's rule
  GET    /_fake/rules            the defaults and every rule
  DELETE /_fake/rules            drops every rule
  GET    /_fake/stats            {"requests": n, "by_model": {...}, "by_path": {...},
                                 "peak_in_flight": {model: most requests answered at once}}
  DELETE /_fake/stats            zeroes the counters
  GET    /_fake/requests?limit=N [{method, path, headers, body}, ...]: the last N provider
                                 requests received (200 kept), oldest first
  DELETE /_fake/requests         forgets the received requests
  GET    /health                 200 "ok"

Only provider requests are counted and logged, never control calls.
"""

from __future__ import annotations

import contextlib
from collections import Counter, deque
from collections.abc import Callable, Iterator

import orjson

from .http11 import Request
from .replies import JsonReply, Payload, Reply, TextReply
from .rules import Knobs, RuleError, RuleTable, parse_rule

REQUEST_LOG_SIZE = 200


class Recorder:
    """Counts provider requests and keeps the latest, so tests can see what the gateway sent."""

    def __init__(self, capacity: int = REQUEST_LOG_SIZE) -> None:
        self.total = 0
        self.by_model: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()
        self.log: deque[Payload] = deque(maxlen=capacity)
        self.answering: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def record(self, request: Request, body: object, model: str = "") -> None:
        self.total += 1
        self.by_path[request.path] += 1
        if model:
            self.by_model[model] += 1
        self.log.append({"method": request.method, "path": request.path, "query": request.query,
                         "headers": request.headers, "body": body})

    @contextlib.contextmanager
    def in_flight(self, model: str) -> Iterator[None]:
        """Around the answer to one request: how many a model is answering at once (a gateway's caps)."""
        self.answering[model] += 1
        self.peak[model] = max(self.peak[model], self.answering[model])
        try:
            yield
        finally:
            self.answering[model] -= 1

    def stats(self) -> Payload:
        return {"requests": self.total, "by_model": dict(self.by_model),
                "by_path": dict(self.by_path), "peak_in_flight": dict(self.peak)}

    def reset_stats(self) -> None:
        self.total = 0
        self.by_model.clear()
        self.by_path.clear()
        self.peak.clear()

    def recent(self, limit: int) -> list[Payload]:
        return list(self.log)[-limit:] if limit > 0 else []


class UpstreamState:
    """Everything a running fake remembers: the rules in force and what it has received."""

    def __init__(self, defaults: Knobs, seed: int) -> None:
        self.rules = RuleTable(defaults, seed)
        self.recorder = Recorder()

    def set_rule(self, payload: object) -> Payload:
        """Apply a control-API rule object; raises RuleError if it does not describe one."""
        model, knobs = parse_rule(payload, self.rules.defaults)
        self.rules.set_rule(model, knobs)
        return {"model": model, "knobs": knobs.as_dict()}

    def reset(self) -> None:
        self.rules.clear()
        self.recorder.reset_stats()
        self.recorder.log.clear()


def handle_control(request: Request, state: UpstreamState) -> Reply:
    handler = _HANDLERS.get((request.method, request.path))
    if handler is None:
        return _error(404, f"Invalid URL ({request.method} {request.path})")
    try:
        return handler(request, state)
    except RuleError as exc:
        return _error(400, str(exc))


def _error(status: int, message: str) -> JsonReply:
    return JsonReply({"error": {"message": message, "type": "invalid_request_error",
                                "param": None, "code": None}}, status=status)


def _post_rule(request: Request, state: UpstreamState) -> Reply:
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise RuleError(f"the rule is not valid JSON: {exc}") from None
    return JsonReply(state.set_rule(payload))


def _get_rules(request: Request, state: UpstreamState) -> Reply:
    return JsonReply(state.rules.describe())


def _delete_rules(request: Request, state: UpstreamState) -> Reply:
    state.rules.clear()
    return JsonReply({"rules": {}})


def _get_stats(request: Request, state: UpstreamState) -> Reply:
    return JsonReply(state.recorder.stats())


def _delete_stats(request: Request, state: UpstreamState) -> Reply:
    state.recorder.reset_stats()
    return JsonReply(state.recorder.stats())


def _get_requests(request: Request, state: UpstreamState) -> Reply:
    limit_text = request.query.get("limit", str(REQUEST_LOG_SIZE))
    if not limit_text.isdigit():
        raise RuleError("limit must be a whole number")
    return JsonReply(state.recorder.recent(int(limit_text)))


def _delete_requests(request: Request, state: UpstreamState) -> Reply:
    state.recorder.log.clear()
    return JsonReply([])


def _health(request: Request, state: UpstreamState) -> Reply:
    return TextReply("ok")


_HANDLERS: dict[tuple[str, str], Callable[[Request, UpstreamState], Reply]] = {
    ("POST", "/_fake/rules"): _post_rule,
    ("GET", "/_fake/rules"): _get_rules,
    ("DELETE", "/_fake/rules"): _delete_rules,
    ("GET", "/_fake/stats"): _get_stats,
    ("DELETE", "/_fake/stats"): _delete_stats,
    ("GET", "/_fake/requests"): _get_requests,
    ("DELETE", "/_fake/requests"): _delete_requests,
    ("GET", "/health"): _health,
}
