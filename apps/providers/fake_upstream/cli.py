"""Command-line flags, shared by `python -m apps.providers.fake_upstream` and the
`edge_fake_upstream` management command so that both accept exactly the same options.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from collections.abc import Mapping

from .rules import Knobs, parse_knobs

# When a failure rate is given without a status, fail the way most upstream outages do.
DEFAULT_FAIL_STATUS = 500


RULES = """\
replies:
  text       "Mock reply to: " + the first 8 words of the last user message, padded with
             "lorem ipsum ..." to --reply-words words, cut at max_tokens words
  tool call  when tools are offered and tool_choice forces one (OpenAI "required" or a named
             function; Anthropic {"type": "any"} or {"type": "tool"}; Gemini mode ANY, with
             allowedFunctionNames), or leaves the choice to the model and the rule has tool_call
             on (--tool-call); never for "none". The named tool, else the first offered; its
             arguments fit its JSON schema (types, enum, const, required, nested objects and
             arrays, min/max bounds, $ref/$defs, anyOf/oneOf/allOf, common string formats)
  JSON       for structured output without a tool call (OpenAI response_format json_schema or
             json_object; Anthropic output_config.format / output_format; Gemini responseMimeType
             application/json with responseJsonSchema or responseSchema): a value that fits the
             schema, or {"answer": "<the text reply>"} when no schema is given
  streams    text in --stream-chunks deltas (one per word by default); tool-call arguments in
             --stream-chunks fragments (4 by default) as OpenAI argument deltas, Anthropic
             input_json_delta events, or one Gemini functionCall part
  tokens     prompt = words of every text part + 3 per message; completion = words of the reply
             (a tool call costs 10); POST /v1/messages/count_tokens counts a prompt the same way
  responses  POST /v1/responses (OpenAI's Responses API) follows the same rules, read from its own
             fields: function tools, tool_choice, text.format json_schema / json_object,
             max_output_tokens; prompt = words of instructions + of each message and
             function_call_output item + 3 per item. Streams are numbered Responses events
             (response.created ... response.completed, usage in the last)

rules per model (POST /_fake/rules {"model": "<name or *>", knob: value, ...}):
  the model's rule, else the rule for "*", else these flags. Knobs and their defaults:
"""


def rules_help() -> str:
    knobs = ", ".join(f"{field.name}={getattr(Knobs(), field.name)!r}" for field in dataclasses.fields(Knobs))
    lines = textwrap.wrap(knobs, width=94, initial_indent="  ", subsequent_indent="  ")
    return RULES + "\n".join(lines) + "\n  (apps/providers/fake_upstream/rules.py says what each does)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = rules_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=18080, help="port to listen on; 0 picks one")
    parser.add_argument("--seed", type=int, default=0, help="seed for fail_rate and jitter")
    parser.add_argument("--latency-ms", type=float, help="delay before every response")
    parser.add_argument("--jitter-ms", type=float, help="random extra delay, 0..N ms")
    parser.add_argument("--chunk-delay-ms", type=float, help="pause between stream events")
    parser.add_argument("--stream-chunks", type=int, help="content deltas per stream")
    parser.add_argument("--reply-words", type=int, help="words per reply (default 12)")
    parser.add_argument("--fail-rate", type=float, help="fraction of requests that fail, 0..1")
    parser.add_argument("--fail-status", type=int, help="HTTP status of failures")
    parser.add_argument("--retry-after", type=int, help="Retry-After seconds on failures")
    parser.add_argument("--require-key", help="reject requests without this API key (401)")
    parser.add_argument("--tool-call", action="store_true", default=None,
                        help="call the first offered tool when tool_choice leaves it to the model")


def knobs_from_options(options: Mapping[str, object]) -> Knobs:
    """Default knobs from parsed flags; raises RuleError on a bad value."""
    names = ("latency_ms", "jitter_ms", "chunk_delay_ms", "stream_chunks", "reply_words",
             "fail_rate", "fail_status", "retry_after", "require_key", "tool_call")
    given = {name: options[name] for name in names if options.get(name) is not None}
    if "fail_rate" in given and "fail_status" not in given:
        given["fail_status"] = DEFAULT_FAIL_STATUS
    return parse_knobs(given, Knobs())
