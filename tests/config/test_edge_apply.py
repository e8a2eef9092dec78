"""`manage.py edge_apply`: configuration files upserted all or nothing, with errors that point at the line."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.billing.models import Tenant
from apps.providers.models import Provider
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from tests.factories import make_provider

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-upstream-secret-1234567890"

# Names start with "cfg-": the session database may hold rows committed by live-gateway tests.
DOCUMENT: dict[str, Any] = {
    "providers": [
        {"name": "cfg-openai", "kind": "openai", "base_url": "https://api.openai.com/v1",
         "api_key": "${CFG_OPENAI_KEY}", "timeout_s": 30, "headers": {"OpenAI-Organization": "org-123"}},
        {"name": "cfg-vllm", "kind": "openai_compatible", "base_url": "http://vllm:8000/v1"},
    ],
    "routing_policies": [
        {"name": "cfg-failover", "strategy": "failover", "max_retries": 2},
        {"name": "cfg-weighted", "strategy": "weighted", "max_retries": 0},
    ],
    "models": [
        {"name": "cfg-chat", "policy": "cfg-failover", "deployments": [
            {"provider": "cfg-openai", "upstream_model": "gpt-4o-mini", "input_usd_per_mtok": "0.15",
             "output_usd_per_mtok": "0.60", "cached_input_usd_per_mtok": "0.075", "priority": 1},
            {"provider": "cfg-vllm", "upstream_model": "llama-8b", "input_usd_per_mtok": "0.05",
             "output_usd_per_mtok": "0.05", "priority": 2},
        ]},
        {"name": "cfg-large", "policy": "cfg-weighted", "enabled": False, "deployments": [
            {"provider": "cfg-openai", "upstream_model": "gpt-4o", "input_usd_per_mtok": "2.50",
             "output_usd_per_mtok": "10.00", "weight": 3},
        ]},
    ],
    "tenants": [
        {"slug": "cfg-acme", "name": "Acme Corp"},
        {"slug": "cfg-globex", "name": "Globex", "active": False},
    ],
}


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_OPENAI_KEY", SECRET)


@pytest.fixture
def document() -> dict[str, Any]:
    return copy.deepcopy(DOCUMENT)


def write(directory: Path, document: dict[str, Any] | str) -> Path:
    path = directory / "edge.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def apply(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("edge_apply", str(path), *args, stdout=out)
    return out.getvalue()


def apply_error(path: Path, *args: str) -> str:
    with pytest.raises(CommandError) as caught:
        apply(path, *args)
    return str(caught.value)


def written_names() -> list[str]:
    """Every row the test document would create, by name: empty means nothing was written."""
    return [
        *Provider.objects.filter(name__startswith="cfg-").values_list("name", flat=True),
        *RoutingPolicy.objects.filter(name__startswith="cfg-").values_list("name", flat=True),
        *PublicModel.objects.filter(name__startswith="cfg-").values_list("name", flat=True),
        *Tenant.objects.filter(slug__startswith="cfg-").values_list("slug", flat=True),
    ]


def deployments_of(model: str) -> list[tuple[str, str, Decimal, Decimal, Decimal | None, int, int]]:
    return [
        (row.provider.name, row.upstream_model, row.input_usd_per_mtok, row.output_usd_per_mtok,
         row.cached_input_usd_per_mtok, row.priority, row.weight)
        for row in Deployment.objects.filter(model__name=model).select_related("provider").order_by("priority", "id")
    ]


def test_it_creates_everything_in_the_file(tmp_path: Path, document: dict[str, Any]) -> None:
    output = apply(write(tmp_path, document))

    assert output.splitlines() == [
        "providers: 2 created, 0 updated, 0 unchanged",
        "routing_policies: 2 created, 0 updated, 0 unchanged",
        "models: 2 created, 0 updated, 0 unchanged",
        "deployments: 3 created, 0 updated, 0 unchanged, 0 removed",
        "tenants: 2 created, 0 updated, 0 unchanged",
    ]
    openai = Provider.objects.get(name="cfg-openai")
    assert (openai.kind, openai.base_url, openai.timeout_s) == ("openai", "https://api.openai.com/v1", 30.0)
    assert openai.extra_headers == {"OpenAI-Organization": "org-123"}
    assert openai.api_key() == SECRET
    vllm = Provider.objects.get(name="cfg-vllm")
    assert (vllm.kind, vllm.timeout_s, vllm.extra_headers, vllm.has_api_key) == ("openai_compatible", 60.0, {}, False)
    weighted = RoutingPolicy.objects.get(name="cfg-weighted")
    assert (weighted.strategy, weighted.max_retries) == ("weighted", 0)
    large = PublicModel.objects.get(name="cfg-large")
    assert (large.policy.name, large.enabled) == ("cfg-weighted", False)
    assert deployments_of("cfg-chat") == [
        ("cfg-openai", "gpt-4o-mini", Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), 1, 1),
        ("cfg-vllm", "llama-8b", Decimal("0.05"), Decimal("0.05"), None, 2, 1),
    ]
    assert deployments_of("cfg-large") == [("cfg-openai", "gpt-4o", Decimal("2.50"), Decimal("10.00"), None, 1, 3)]
    assert list(Tenant.objects.filter(slug__startswith="cfg-").values_list("slug", "name", "is_active")) == [
        ("cfg-acme", "Acme Corp", True), ("cfg-globex", "Globex", False),
    ]


def test_it_reports_everything_unchanged_on_a_second_apply(tmp_path: Path, document: dict[str, Any]) -> None:
    path = write(tmp_path, document)
    apply(path)
    before = Provider.objects.get(name="cfg-openai").updated_at

    output = apply(path)

    assert output.splitlines() == [
        "providers: 0 created, 0 updated, 2 unchanged",
        "routing_policies: 0 created, 0 updated, 2 unchanged",
        "models: 0 created, 0 updated, 2 unchanged",
        "deployments: 0 created, 0 updated, 3 unchanged, 0 removed",
        "tenants: 0 created, 0 updated, 2 unchanged",
    ]
    assert Provider.objects.get(name="cfg-openai").updated_at == before


def test_it_updates_a_changed_price(tmp_path: Path, document: dict[str, Any]) -> None:
    apply(write(tmp_path, document))
    document["models"][0]["deployments"][0]["output_usd_per_mtok"] = "0.65"

    output = apply(write(tmp_path, document))

    assert "deployments: 0 created, 1 updated, 2 unchanged, 0 removed" in output
    assert deployments_of("cfg-chat")[0][3] == Decimal("0.65")


def test_a_changed_price_is_a_new_version_from_now_and_the_old_one_stays(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    apply(write(tmp_path, document))
    deployment = Deployment.objects.get(model__name="cfg-chat", upstream_model="gpt-4o-mini")
    [first] = deployment.price_versions.all()
    document["models"][0]["deployments"][0]["output_usd_per_mtok"] = "0.65"

    apply(write(tmp_path, document))
    apply(write(tmp_path, document))  # unchanged the second time: no version

    old, new = deployment.price_versions.order_by("effective_from")
    assert old == first and (old.output_usd_per_mtok, new.output_usd_per_mtok) == (Decimal("0.60"), Decimal("0.65"))
    assert new.effective_from > old.effective_from and new.note == "config as code (edge_apply)"
    assert old.effective_from == deployment.created_at


def test_it_removes_deployments_missing_from_the_file(tmp_path: Path, document: dict[str, Any]) -> None:
    apply(write(tmp_path, document))
    del document["models"][0]["deployments"][1]

    output = apply(write(tmp_path, document))

    assert "deployments: 0 created, 0 updated, 2 unchanged, 1 removed (cfg-chat → cfg-vllm/llama-8b)" in output
    assert [row[0] for row in deployments_of("cfg-chat")] == ["cfg-openai"]
    assert Provider.objects.filter(name="cfg-vllm").exists()


def test_it_leaves_entries_absent_from_the_file_alone(tmp_path: Path, document: dict[str, Any]) -> None:
    apply(write(tmp_path, document))
    partial = {"models": [document["models"][0]], "tenants": [{"slug": "cfg-acme", "name": "Acme Inc"}]}

    output = apply(write(tmp_path, partial))

    assert "providers: 0 created, 0 updated, 0 unchanged" in output
    assert "tenants: 0 created, 1 updated, 0 unchanged" in output
    assert len(deployments_of("cfg-large")) == 1
    assert Tenant.objects.filter(slug="cfg-globex").exists()
    assert Provider.objects.get(name="cfg-openai").api_key() == SECRET


def test_it_keeps_the_stored_api_key_when_the_entry_has_none(tmp_path: Path, document: dict[str, Any]) -> None:
    apply(write(tmp_path, document))
    del document["providers"][0]["api_key"]

    output = apply(write(tmp_path, document))

    assert "providers: 0 created, 0 updated, 2 unchanged" in output
    assert Provider.objects.get(name="cfg-openai").api_key() == SECRET


def test_it_replaces_the_api_key_when_the_variable_changes(
    tmp_path: Path, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, document)
    apply(path)
    monkeypatch.setenv("CFG_OPENAI_KEY", "sk-rotated")

    output = apply(path)

    assert "providers: 0 created, 1 updated, 1 unchanged" in output
    assert Provider.objects.get(name="cfg-openai").api_key() == "sk-rotated"


def test_it_never_prints_the_api_key(tmp_path: Path, document: dict[str, Any]) -> None:
    output = apply(write(tmp_path, document), "--check") + apply(write(tmp_path, document))
    document["providers"][0]["api_key"] = 12345

    error = apply_error(write(tmp_path, document))

    assert SECRET not in output
    assert "providers[0] (cfg-openai).api_key: expected a string, got 12345" in error


def test_it_fills_variables_from_the_environment(
    tmp_path: Path, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_ORG", "org-from-env")
    monkeypatch.setenv("CFG_PRICE", "0.25")
    document["providers"][0]["headers"] = {"OpenAI-Organization": "${CFG_ORG}", "X-Template": "$${CFG_ORG}"}
    document["models"][0]["deployments"][0]["input_usd_per_mtok"] = "${CFG_PRICE}"

    apply(write(tmp_path, document))

    headers = Provider.objects.get(name="cfg-openai").extra_headers
    assert headers == {"OpenAI-Organization": "org-from-env", "X-Template": "${CFG_ORG}"}
    assert deployments_of("cfg-chat")[0][2] == Decimal("0.25")


def test_it_names_a_missing_variable_and_its_entry(
    tmp_path: Path, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CFG_OPENAI_KEY")

    error = apply_error(write(tmp_path, document))

    assert "providers[0] (cfg-openai).api_key: environment variable CFG_OPENAI_KEY is not set" in error
    assert written_names() == []


def test_it_reads_prices_written_as_yaml_numbers_exactly(tmp_path: Path, document: dict[str, Any]) -> None:
    deployment = document["models"][0]["deployments"][0]
    deployment.update(input_usd_per_mtok=0.1, output_usd_per_mtok=3, cached_input_usd_per_mtok=0.000001)

    apply(write(tmp_path, document))

    assert deployments_of("cfg-chat")[0][2:5] == (Decimal("0.1"), Decimal("3"), Decimal("0.000001"))


def test_it_sets_a_cache_write_price_and_clears_it_when_the_file_drops_it(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    deployment = document["models"][0]["deployments"][0]
    deployment["cache_write_usd_per_mtok"] = "0.1875"
    apply(write(tmp_path, document))
    written = Deployment.objects.get(model__name="cfg-chat", upstream_model="gpt-4o-mini")
    assert written.cache_write_usd_per_mtok == Decimal("0.1875")

    del deployment["cache_write_usd_per_mtok"]
    output = apply(write(tmp_path, document))

    assert "deployments: 0 created, 1 updated, 2 unchanged, 0 removed" in output
    written.refresh_from_db()
    assert written.cache_write_usd_per_mtok is None  # blank again: the input price


Mutation = Callable[[dict[str, Any]], object]
LAST_PROVIDER = "providers[1] (cfg-vllm)"
LAST_DEPLOYMENT = "models[1] (cfg-large).deployments[0]"

# Each breaks only the LAST entry of its section, so a writer that validated as it went would
# already have written the entries before it.
INVALID: list[tuple[str, Mutation, str]] = [
    ("misspelt field", lambda d: d["providers"][-1].update(timeout=5),
     f"{LAST_PROVIDER}.timeout: unknown field 'timeout' (did you mean 'timeout_s'?)"),
    ("unregistered kind", lambda d: d["providers"][-1].update(kind="vllm"),
     f"{LAST_PROVIDER}.kind: unknown provider kind 'vllm'"),
    ("not an http url", lambda d: d["providers"][-1].update(base_url="ftp://vllm/v1"),
     f"{LAST_PROVIDER}.base_url: 'ftp://vllm/v1' is not an http(s) URL"),
    ("timeout as text", lambda d: d["providers"][-1].update(timeout_s="60"),
     f"{LAST_PROVIDER}.timeout_s: expected a number, got a string"),
    ("header not text", lambda d: d["providers"][-1].update(headers={"X-Team": 7}),
     f"{LAST_PROVIDER}.headers.X-Team: expected a string, got 7"),
    ("enabled as text", lambda d: d["providers"][-1].update(enabled="yes"),
     f"{LAST_PROVIDER}.enabled: expected true or false, got a string"),
    ("repeated provider", lambda d: d["providers"].append(dict(d["providers"][0], api_key="x")),
     "providers[2] (cfg-openai).name: 'cfg-openai' is already declared by providers[0] (cfg-openai)"),
    ("unknown strategy", lambda d: d["routing_policies"][-1].update(strategy="fastest"),
     "routing_policies[1] (cfg-weighted).strategy: unknown strategy 'fastest'"),
    ("negative retries", lambda d: d["routing_policies"][-1].update(max_retries=-1),
     "routing_policies[1] (cfg-weighted).max_retries: must be at least 0, got -1"),
    ("unknown policy", lambda d: d["models"][-1].update(policy="cfg-fastest"),
     "models[1] (cfg-large).policy: unknown routing policy 'cfg-fastest'"),
    ("no deployments key", lambda d: d["models"][-1].pop("deployments"),
     "models[1] (cfg-large).deployments: missing (required)"),
    ("unknown provider", lambda d: d["models"][-1]["deployments"][0].update(provider="cfg-opneai"),
     f"{LAST_DEPLOYMENT}.provider: unknown provider 'cfg-opneai'"),
    ("price not a number", lambda d: d["models"][-1]["deployments"][0].update(input_usd_per_mtok="0.1.5"),
     f"{LAST_DEPLOYMENT}.input_usd_per_mtok: '0.1.5' is not a decimal number"),
    ("negative price", lambda d: d["models"][-1]["deployments"][0].update(input_usd_per_mtok=-1),
     f"{LAST_DEPLOYMENT}.input_usd_per_mtok: must be a non-negative decimal, got -1"),
    ("price too precise", lambda d: d["models"][-1]["deployments"][0].update(output_usd_per_mtok="0.0000001"),
     f"{LAST_DEPLOYMENT}.output_usd_per_mtok: at most 6 decimal places"),
    ("price as boolean", lambda d: d["models"][-1]["deployments"][0].update(cached_input_usd_per_mtok=True),
     f"{LAST_DEPLOYMENT}.cached_input_usd_per_mtok: expected a decimal string"),
    ("negative cache-write price", lambda d: d["models"][-1]["deployments"][0].update(cache_write_usd_per_mtok="-1"),
     f"{LAST_DEPLOYMENT}.cache_write_usd_per_mtok: must be a non-negative decimal, got '-1'"),
    ("missing price", lambda d: d["models"][-1]["deployments"][0].pop("output_usd_per_mtok"),
     f"{LAST_DEPLOYMENT}.output_usd_per_mtok: missing (required)"),
    ("fractional priority", lambda d: d["models"][-1]["deployments"][0].update(priority=1.5),
     f"{LAST_DEPLOYMENT}.priority: expected a whole number, got 1.5"),
    ("repeated deployment", lambda d: d["models"][-1]["deployments"].append(dict(d["models"][-1]["deployments"][0])),
     "models[1] (cfg-large).deployments[1].upstream_model: deployments[0] already deploys 'gpt-4o' on 'cfg-openai'"),
    ("tenant slug with spaces", lambda d: d["tenants"][-1].update(slug="cfg globex"),
     "tenants[1] (cfg globex).slug: 'cfg globex' is not a slug"),
    ("tenant without name", lambda d: d["tenants"][-1].pop("name"), "tenants[1] (cfg-globex).name: missing (required)"),
    ("active as number", lambda d: d["tenants"][-1].update(active=1),
     "tenants[1] (cfg-globex).active: expected true or false, got 1"),
    ("bad variable syntax", lambda d: d["providers"][-1].update(api_key="${CFG KEY}"),
     f"{LAST_PROVIDER}.api_key: '${{' must be followed by a variable name and '}}'"),
    ("entry not a mapping", lambda d: d["tenants"].append("cfg-initech"),
     "tenants[2]: expected a mapping, got a string"),
    ("hybrid weight above one", lambda d: d["routing_policies"][0].update(hybrid_cost_weight=1.5),
     "routing_policies[0] (cfg-failover).hybrid_cost_weight: must be at most 1, got 1.5"),
    ("fallbacks not names", lambda d: d["routing_policies"][0].update(fallbacks={"default": "cfg-large"}),
     "routing_policies[0] (cfg-failover).fallbacks.default: expected a list of model names"),
    ("no trial successes", lambda d: d["routing_policies"][0].update(breaker_success_threshold=0),
     "routing_policies[0] (cfg-failover).breaker_success_threshold: must be at least 1, got 0"),
    ("unknown strategy", lambda d: d["routing_policies"][0].update(strategy="least-latency"),
     "routing_policies[0] (cfg-failover).strategy: unknown strategy 'least-latency' (did you mean 'least_latency'?)"),
    ("misspelt section", lambda d: d.update(tenant=[]),
     "tenant: unknown section (expected one of: providers, routing_policies, models, tenants)"),
]


@pytest.mark.parametrize(("mutate", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_it_names_the_entry_and_field_of_an_error_and_writes_nothing(
    tmp_path: Path, document: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    mutate(document)

    error = apply_error(write(tmp_path, document))

    assert expected in error
    assert "1 error, nothing was applied" in error
    assert written_names() == []


def test_it_reports_every_error_not_just_the_first(tmp_path: Path, document: dict[str, Any]) -> None:
    document["providers"][0]["kind"] = "opneai"
    document["models"][0]["deployments"][1]["provider"] = "cfg-vlm"
    document["tenants"][1]["active"] = "no"

    error = apply_error(write(tmp_path, document))

    assert "3 errors, nothing was applied" in error
    assert "providers[0] (cfg-openai).kind: unknown provider kind 'opneai' (did you mean 'openai'?)" in error
    assert "models[0] (cfg-chat).deployments[1].provider: unknown provider 'cfg-vlm'" in error
    assert "tenants[1] (cfg-globex).active: expected true or false, got a string" in error


def test_it_refuses_a_key_given_twice(tmp_path: Path) -> None:
    text = "tenants:\n  - slug: cfg-acme\n    name: Acme\n    name: Acme Corp\n"

    error = apply_error(write(tmp_path, text))

    assert "duplicate key 'name'" in error
    assert "line 4" in error
    assert written_names() == []


def test_it_refuses_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    error = apply_error(write(tmp_path, "providers: [unclosed\n"))

    assert "not valid YAML" in error


def test_it_rolls_everything_back_when_a_write_fails(
    tmp_path: Path, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Tenant, "save", broken_save)  # tenants are written last

    with pytest.raises(RuntimeError):
        apply(write(tmp_path, document))

    assert written_names() == []


def test_it_writes_nothing_with_check(tmp_path: Path, document: dict[str, Any]) -> None:
    output = apply(write(tmp_path, document), "--check")

    assert "providers: 2 created, 0 updated, 0 unchanged" in output
    assert "deployments: 3 created, 0 updated, 0 unchanged, 0 removed" in output
    assert output.splitlines()[-1].startswith("check passed:")
    assert written_names() == []


def test_it_checks_references_against_the_database(tmp_path: Path) -> None:
    stored = make_provider("http://127.0.0.1:9/v1")
    model = {"name": "cfg-chat", "policy": "cfg-failover", "deployments": [
        {"provider": stored.name, "upstream_model": "m", "input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
        {"provider": "cfg-nowhere", "upstream_model": "m", "input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
    ]}
    path = write(tmp_path, {"routing_policies": [DOCUMENT["routing_policies"][0]], "models": [model]})

    error = apply_error(path, "--check")

    assert "models[0] (cfg-chat).deployments[1].provider: unknown provider 'cfg-nowhere'" in error
    assert stored.name not in error


def test_it_applies_the_demo_file() -> None:
    output = apply(REPO_ROOT / "config" / "demo.yaml")

    assert "providers:" in output
    fake = Provider.objects.get(name="fake")
    assert (fake.kind, fake.base_url, fake.api_key()) == ("openai", "http://127.0.0.1:18080/v1", "sk-fake-upstream")
    policy = RoutingPolicy.objects.get(name="default")
    assert (policy.strategy, policy.max_retries) == ("failover", 2)
    assert deployments_of("gpt-4o-mini") == [
        ("fake", "mock-model", Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), 1, 1)
    ]
    assert deployments_of("gpt-4o") == [
        ("fake", "mock-model", Decimal("2.50"), Decimal("10.00"), Decimal("1.25"), 1, 1)
    ]
    assert Tenant.objects.filter(slug="demo", is_active=True).exists()


def test_it_applies_the_example_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-example")

    apply(REPO_ROOT / "config" / "example.yaml")

    assert [row[0] for row in deployments_of("chat-default")] == ["openai-main", "vllm-gpu1"]
    assert Provider.objects.get(name="openai-main").api_key() == SECRET
    assert not Provider.objects.get(name="vllm-gpu1").has_api_key
    search = Tenant.objects.get(slug="search-team")
    assert (search.rpm, search.tpm, search.max_parallel) == (600, 1_000_000, 20)
    assert (search.budget_usd, search.budget_period, search.timezone) == (Decimal("500.00"), "month", "Europe/Berlin")
    assert Deployment.objects.get(model__name="gpt-4o").max_output_tokens == 4096


def test_it_writes_a_policys_routing_and_resilience_fields(tmp_path: Path, document: dict[str, Any]) -> None:
    document["routing_policies"][0].update(
        strategy="hybrid", same_deployment_retries=0, backoff_start_ms=50, breaker_failure_threshold=3,
        breaker_reset_s=5, hybrid_cost_weight=0.6, hybrid_latency_weight=0.3, hybrid_reliability_weight=0.1,
        request_deadline_s=20, stream_idle_timeout_s=10, fallbacks={"context_length_exceeded": ["cfg-large"]},
    )

    apply(write(tmp_path, document))

    policy = RoutingPolicy.objects.get(name="cfg-failover")
    assert (policy.strategy, policy.same_deployment_retries, policy.backoff_start_ms) == ("hybrid", 0, 50)
    assert (policy.breaker_failure_threshold, policy.breaker_reset_s, policy.hybrid_cost_weight) == (3, 5.0, 0.6)
    assert (policy.request_deadline_s, policy.stream_idle_timeout_s) == (20.0, 10.0)
    assert policy.fallbacks == {"context_length_exceeded": ["cfg-large"]}
    assert RoutingPolicy.objects.get(name="cfg-weighted").breaker_failure_threshold == 5  # defaults elsewhere
    assert "routing_policies: 0 created, 0 updated, 2 unchanged" in apply(write(tmp_path, document))
