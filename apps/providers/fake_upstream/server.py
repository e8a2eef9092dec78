"""The fake upstream server: connections, routing, and the order in which faults strike.

For a provider request the steps are: record it → pick its rule → wait
`latency_ms` → reset or hang if told to → check the key → fail with
`fail_status` if told to → build the reply → send it, broken as told.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson

from . import anthropic_wire, gemini_wire, openai_responses_wire, openai_wire
from .control import UpstreamState, handle_control
from .delivery import reset_connection, send_reply, wait_for_close
from .http11 import READ_LIMIT, BadRequest, Request, read_request
from .openai_completions_wire import completion
from .openai_embeddings_wire import embeddings, list_models
from .replies import JsonReply, Payload, ProviderError, Reply, SseReply, TextReply
from .rules import Knobs, parse_knobs

ErrorRenderer = Callable[..., JsonReply]
NO_FAULTS = Knobs()


@dataclass(frozen=True)
class ProviderRoute:
    method: str
    build: Callable[[Payload, Knobs], JsonReply | SseReply]
    render_error: ErrorRenderer
    takes_body: bool = True
    path_model: str | None = None  # Azure and Gemini name the model in the path, not the body
    required_query: str | None = None  # a query parameter the provider refuses requests without


ROUTES: dict[str, ProviderRoute] = {
    "/v1/chat/completions": ProviderRoute(
        "POST", openai_wire.chat_completion, openai_wire.error_reply),
    "/v1/completions": ProviderRoute("POST", completion, openai_wire.error_reply),
    "/v1/embeddings": ProviderRoute("POST", embeddings, openai_wire.error_reply),
    "/v1/models": ProviderRoute(
        "GET", lambda body, knobs: list_models(), openai_wire.error_reply, takes_body=False),
    "/v1/messages": ProviderRoute("POST", anthropic_wire.message, anthropic_wire.error_reply),
    "/v1/messages/count_tokens": ProviderRoute(
        "POST", anthropic_wire.count_tokens, anthropic_wire.error_reply),
    "/v1/responses": ProviderRoute("POST", openai_responses_wire.response, openai_wire.error_reply),
}


# Azure OpenAI: /openai/deployments/{deployment}/{endpoint}?api-version=…, OpenAI's bodies.
_AZURE_PATH = re.compile(
    r"^/openai/deployments/(?P<model>[^/]+)/(?P<endpoint>chat/completions|completions|embeddings)$")
# Gemini: /v1beta/models/{model}:{method}
_GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def resolve_route(path: str) -> ProviderRoute | None:
    """The provider route for a request path: OpenAI's and Anthropic's fixed paths, or a pattern."""
    if route := ROUTES.get(path):
        return route
    if match := _AZURE_PATH.match(path):
        model, openai_route = match["model"], ROUTES["/v1/" + match["endpoint"]]

        def deployment(body: Payload, knobs: Knobs) -> JsonReply | SseReply:
            return openai_route.build({**body, "model": body.get("model") or model}, knobs)

        return replace(openai_route, build=deployment, path_model=model, required_query="api-version")
    if (match := _GEMINI_PATH.match(path)) and match["method"] in _GEMINI_METHODS:
        return ProviderRoute("POST", _GEMINI_METHODS[match["method"]](match["model"]), gemini_wire.error_reply,
                             path_model=match["model"])
    return None


def _gemini(method: str) -> Callable[[str], Callable[[Payload, Knobs], JsonReply | SseReply]]:
    def for_model(model: str) -> Callable[[Payload, Knobs], JsonReply | SseReply]:
        if method == "batchEmbedContents":
            return lambda body, knobs: gemini_wire.batch_embed(model, body, knobs)
        stream = method == "streamGenerateContent"
        return lambda body, knobs: gemini_wire.generate_content(model, body, knobs, stream=stream)
    return for_model


_GEMINI_METHODS = {name: _gemini(name) for name in ("generateContent", "streamGenerateContent", "batchEmbedContents")}


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when installed: it roughly doubles the requests one core can serve."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def presented_keys(headers: dict[str, str]) -> set[str]:
    """The API keys a request carries: the OpenAI, Anthropic, Azure or Gemini way."""
    keys = {headers.get("x-api-key", ""), headers.get("api-key", ""), headers.get("x-goog-api-key", "")}
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        keys.add(token.strip())
    return keys - {""}


class FakeUpstream:
    """An LLM provider impersonator: OpenAI, Azure OpenAI, Anthropic and Gemini wire formats, with faults on demand."""

    def __init__(self, defaults: Knobs = NO_FAULTS, seed: int = 0) -> None:
        self.state = UpstreamState(defaults, seed)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 picks a free port) and return the port listened on."""
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, limit=READ_LIMIT, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Hanging connections never end by themselves, and wait_closed would wait for them.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def run_forever(self, host: str, port: int, *,
                    announce: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, announcing the address once listening."""
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(self._serve_until_signalled(host, port, announce or _print_now))

    def set_rule(self, model: str, **knobs: object) -> None:
        """Set a rule from Python, checked as the control API checks it."""
        self.state.rules.set_rule(model, parse_knobs(knobs, self.state.rules.defaults))

    def reset(self) -> None:
        """Forget every rule, counter and recorded request."""
        self.state.reset()

    async def _serve_until_signalled(self, host: str, port: int,
                                     announce: Callable[[str], None]) -> None:
        bound_port = await self.start(host, port)
        shown_host = f"[{host}]" if ":" in host else host
        announce(f"fake upstream listening on http://{shown_host}:{bound_port}")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        await self.stop()

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._serve_one(reader, writer):
                pass
        except ConnectionError:
            pass  # the client went away; nobody is left to tell
        except asyncio.CancelledError:
            # stop() cancels connections; ending quietly keeps Python 3.11's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True if the connection should wait for another."""
        try:
            request = await read_request(reader, writer)
        except BadRequest as exc:
            await send_reply(writer, TextReply(str(exc), exc.status), NO_FAULTS,
                             keep_alive=False)
            return False
        if request is None:
            return False
        route = resolve_route(request.path)
        if route is None:
            reply = handle_control(request, self.state)
            return await send_reply(writer, reply, NO_FAULTS, keep_alive=request.keep_alive)
        return await self._serve_provider(route, request, reader, writer)

    async def _serve_provider(self, route: ProviderRoute, request: Request,
                              reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> bool:
        if request.method != route.method:
            refusal = route.render_error(405, f"Method {request.method} not allowed.")
            return await send_reply(writer, refusal, NO_FAULTS, keep_alive=request.keep_alive)
        body = _parse_json(request.body) if request.body else None
        model = route.path_model or _model_of(body)
        self.state.recorder.record(request, body, model)
        with self.state.recorder.in_flight(model):
            rule = self.state.rules.rule_for(model)
            knobs = rule.draw()
            delay = rule.delay_seconds()
            if delay:
                await asyncio.sleep(delay)
            if knobs.reset:
                reset_connection(writer)
                return False
            if knobs.hang:
                await wait_for_close(reader)
                return False
            reply = _provider_reply(route, request, body, knobs)
            return await send_reply(writer, reply, knobs, keep_alive=request.keep_alive)


def _provider_reply(route: ProviderRoute, request: Request, body: object,
                    knobs: Knobs) -> Reply:
    if route.required_query and route.required_query not in request.query:
        return route.render_error(404, f"Missing the {route.required_query} query parameter.")
    if knobs.require_key and knobs.require_key not in presented_keys(request.headers):
        return route.render_error(401)
    if knobs.fail_status:
        return route.render_error(knobs.fail_status, knobs.error_message, retry_after=knobs.retry_after)
    if route.takes_body and not isinstance(body, dict):
        return route.render_error(400, "We could not parse the JSON body of your request.")
    try:
        return route.build(body if isinstance(body, dict) else {}, knobs)
    except ProviderError as exc:
        return route.render_error(exc.status, exc.message, param=exc.param)


def _model_of(body: object) -> str:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else ""


def _parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _print_now(line: str) -> None:
    print(line, flush=True)
