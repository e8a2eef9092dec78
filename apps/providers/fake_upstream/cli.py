"""Command-line flags, shared by `python -m apps.providers.fake_upstream` and the
`edge_fake_upstream` management command so that both accept exactly the same options.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from .rules import Knobs, parse_knobs

# When a failure rate is given without a status, fail the way most upstream outages do.
DEFAULT_FAIL_STATUS = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def knobs_from_options(options: Mapping[str, object]) -> Knobs:
    """Default knobs from parsed flags; raises RuleError on a bad value."""
    names = ("latency_ms", "jitter_ms", "chunk_delay_ms", "stream_chunks", "reply_words",
             "fail_rate", "fail_status", "retry_after", "require_key")
    given = {name: options[name] for name in names if options.get(name) is not None}
    if "fail_rate" in given and "fail_status" not in given:
        given["fail_status"] = DEFAULT_FAIL_STATUS
    return parse_knobs(given, Knobs())
