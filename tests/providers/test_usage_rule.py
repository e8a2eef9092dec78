"""The one rule every endpoint bills by: the usage an answer came with, estimated only when it has none."""

from __future__ import annotations

import pytest

from apps.providers.contracts import NO_USAGE, Usage
from apps.providers.tokens import usage_or_estimate


def never() -> Usage:
    pytest.fail("estimated usage for an answer that came with its own")


@pytest.mark.parametrize("usage", [Usage(5, 2, source="provider"), Usage(5, source="estimated")])
def test_it_keeps_the_usage_an_answer_came_with_whoever_counted_it(usage: Usage):
    assert usage_or_estimate(usage, never) is usage


def test_it_estimates_only_an_answer_that_came_without_usage():
    estimate = Usage(7, 3, source="estimated")

    assert usage_or_estimate(NO_USAGE, lambda: estimate) is estimate
