"""Each routing-policy setting has one default, RoutingPolicy's: requests that meet a deployment
before its policy loads, and policies written in code, behave as a new policy saved in admin does."""

from __future__ import annotations

import dataclasses

from apps.routing.models import RoutingPolicy
from apps.routing.table import DEFAULT_POLICY, RoutePolicy, route_policy


def test_the_snapshot_of_a_new_policy_is_the_default_policy():
    assert route_policy(RoutingPolicy(id=0)) == DEFAULT_POLICY == RoutePolicy()


def test_keyword_overrides_keep_the_other_defaults():
    policy = RoutePolicy(breaker_failure_threshold=9)

    assert policy.breaker_failure_threshold == 9
    assert dataclasses.replace(policy, breaker_failure_threshold=5) == DEFAULT_POLICY
