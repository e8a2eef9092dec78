"""The cache settings of routing policies in config files: applied, validated, exported, round-tripped."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError

from apps.routing.models import RoutingPolicy
from tests.harness.config_commands import apply_text, export

pytestmark = pytest.mark.django_db

CONFIG = """\
routing_policies:
  - {name: cachecfg-cached, strategy: failover, cache_enabled: true, cache_ttl_s: 600,
     cache_shared_tenants: [cachecfg-beta, cachecfg-alpha]}
  - {name: cachecfg-plain, strategy: failover}
tenants:
  - {slug: cachecfg-alpha, name: Alpha}
  - {slug: cachecfg-beta, name: Beta}
"""


def test_it_applies_a_policy_cache_settings_and_its_shared_tenants(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    cached = RoutingPolicy.objects.get(name="cachecfg-cached")
    plain = RoutingPolicy.objects.get(name="cachecfg-plain")
    assert (cached.cache_enabled, cached.cache_ttl_s) == (True, 600)
    assert sorted(cached.cache_shared_tenants.values_list("slug", flat=True)) == ["cachecfg-alpha", "cachecfg-beta"]
    assert (plain.cache_enabled, plain.cache_ttl_s, plain.cache_shared_tenants.count()) == (False, 3600, 0)


def test_applying_the_same_file_again_changes_nothing(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    output = apply_text(tmp_path, CONFIG)

    assert "routing_policies: 0 created, 0 updated, 2 unchanged" in output


def test_a_changed_shared_namespace_counts_as_an_update(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    output = apply_text(tmp_path, CONFIG.replace("[cachecfg-beta, cachecfg-alpha]", "[cachecfg-alpha]"))

    assert "routing_policies: 0 created, 1 updated, 1 unchanged" in output
    assert list(RoutingPolicy.objects.get(name="cachecfg-cached").cache_shared_tenants.values_list(
        "slug", flat=True)) == ["cachecfg-alpha"]


def test_export_writes_the_cache_settings_and_applying_it_changes_nothing(tmp_path: Path):
    apply_text(tmp_path, CONFIG)
    exported = export()

    output = apply_text(tmp_path, exported)

    assert "cache_enabled: true\n    cache_ttl_s: 600\n" in exported
    assert "cache_shared_tenants:\n      - cachecfg-alpha\n      - cachecfg-beta\n" in exported
    assert "routing_policies: 0 created, 0 updated" in output


@pytest.mark.parametrize(("change", "error"), [
    (("[cachecfg-beta, cachecfg-alpha]", "[cachecfg-nobody]"),
     "routing_policies[0] (cachecfg-cached).cache_shared_tenants: unknown tenant 'cachecfg-nobody'"),
    (("cache_ttl_s: 600", "cache_ttl_s: 0"),
     "routing_policies[0] (cachecfg-cached).cache_ttl_s: must be at least 1, got 0"),
    (("cache_enabled: true", "cache_enabled: sometimes"),
     "routing_policies[0] (cachecfg-cached).cache_enabled: expected true or false"),
    (("[cachecfg-beta, cachecfg-alpha]", "cachecfg-beta"),
     "routing_policies[0] (cachecfg-cached).cache_shared_tenants: expected a list of tenant slugs"),
])
def test_it_refuses_bad_cache_settings_and_writes_nothing(tmp_path: Path, change: tuple[str, str], error: str):
    with pytest.raises(CommandError) as raised:
        apply_text(tmp_path, CONFIG.replace(*change))

    assert error in str(raised.value)
    assert not RoutingPolicy.objects.filter(name__startswith="cachecfg-").exists()
