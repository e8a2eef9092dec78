"""What usage is believable for a request, and the headers that tell clients about their limits."""

from __future__ import annotations

import pytest

from apps.providers.contracts import Usage
from apps.proxy.headers import go_duration
from apps.proxy.usage_bounds import UsageBounds, believed_usage

BOUNDS = UsageBounds.of(body_bytes=100, media_parts=1, output_tokens=50)
ESTIMATE = Usage(prompt_tokens=12, completion_tokens=9, source="estimated")


def test_the_bounds_cover_the_body_its_media_and_a_margin_and_the_output_cap():
    assert BOUNDS.prompt_tokens == 100 + 2_000 + 1_000
    assert BOUNDS.completion_tokens == 50 + 16  # 1% of 50 rounds down to nothing, plus 16


@pytest.mark.parametrize("reported", [
    Usage(prompt_tokens=-1, source="provider"),
    Usage(completion_tokens=-3, source="provider"),
    Usage(prompt_tokens=3_101, source="provider"),
    Usage(completion_tokens=67, source="provider"),
    Usage(prompt_tokens=10, cached_tokens=8, cache_creation_tokens=5, source="provider"),
    Usage(prompt_tokens=1.5, source="provider"),  # type: ignore[arg-type]  # what a broken adapter could pass
])
def test_usage_no_request_could_have_used_is_replaced_by_the_estimate_and_noted(reported: Usage):
    usage, note = believed_usage(reported, lambda: ESTIMATE, BOUNDS, request_id="req_x")

    assert usage == ESTIMATE
    assert note.startswith("provider reported")


def test_usage_within_the_bounds_is_believed_as_reported():
    reported = Usage(prompt_tokens=3_100, completion_tokens=66, cached_tokens=3_000, source="provider")

    assert believed_usage(reported, lambda: ESTIMATE, BOUNDS, request_id="req_x") == (reported, "")


def test_an_estimate_is_clamped_to_the_bounds_too():
    huge = Usage(prompt_tokens=10**9, completion_tokens=10**9, source="estimated")

    usage, _ = believed_usage(Usage(prompt_tokens=-1, source="provider"), lambda: huge, BOUNDS, request_id="r")

    assert (usage.prompt_tokens, usage.completion_tokens) == (BOUNDS.prompt_tokens, BOUNDS.completion_tokens)


def test_an_estimate_that_fails_bills_nothing_and_says_so():
    def broken() -> Usage:
        raise ValueError("not JSON")

    usage, note = believed_usage(Usage(), broken, BOUNDS, request_id="req_x")

    assert (usage.total_tokens, usage.source, note) == (0, "estimated", "the gateway could not estimate usage")


def test_a_number_too_long_to_print_is_named_without_printing_it():
    _, note = believed_usage(Usage(prompt_tokens=10**5000, source="provider"), lambda: ESTIMATE, BOUNDS,
                             request_id="req_x")

    assert "too large to print" in note and len(note) < 300


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0ms"), (0.0201, "21ms"), (1, "1s"), (1.5, "1.5s"), (6.0004, "6s"), (59.981, "59.981s"),
    (60, "1m0s"), (360, "6m0s"), (3661, "1h1m1s"),
])
def test_reset_durations_are_written_the_way_openai_writes_them(seconds: float, text: str):
    assert go_duration(seconds) == text
