"""The compose stack's monitoring (docker/): Prometheus' alert rules pass promtool and fire when they should,
and every dashboard panel and alert reads metrics that /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from tests.harness.scraping import parse

DOCKER = Path(__file__).resolve().parents[1] / "docker"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "llm-edge.json"
METRIC_NAME = re.compile(r"\bllm_[a-z0-9_]+")
SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")
promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool here (.ci/run installs it)")


@promtool
def test_the_alert_rules_pass_promtool():
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr


@promtool
def test_each_alert_fires_on_the_series_it_watches_and_not_on_healthy_ones():
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=DOCKER / "prometheus",
                            capture_output=True, text=True)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def dashboard_expressions() -> dict[str, list[str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {panel["title"]: [target["expr"] for target in panel["targets"]]
            for panel in dashboard["panels"] if panel["type"] != "row"}


def alert_expressions() -> dict[str, list[str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: [rule["expr"]] for group in rules["groups"] for rule in group["rules"]}


@pytest.fixture
def exported(transactional_db: Any) -> set[str]:
    """Every sample name /metrics may carry: each family it declares, with its type's suffixes."""
    families = parse(Client().get("/metrics").content.decode()).types
    return {family + suffix for family in families for suffix in SAMPLE_SUFFIXES}


@pytest.mark.parametrize("expressions", [dashboard_expressions, alert_expressions], ids=["dashboard", "alerts"])
def test_every_expression_reads_metrics_the_gateway_exports(expressions: Any, exported: set[str]):
    unknown = {
        title: sorted(set(METRIC_NAME.findall(expr)) - exported)
        for title, exprs in expressions().items() for expr in exprs
        if set(METRIC_NAME.findall(expr)) - exported
    }

    assert unknown == {}
    assert all(METRIC_NAME.search(expr) for exprs in expressions().values() for expr in exprs)


def test_the_dashboard_covers_what_operators_watch():
    titles = " | ".join(dashboard_expressions()).lower()

    for topic in ("requests", "errors", "latency", "first token", "overhead", "cache hit rate", "circuit breakers",
                  "tokens", "spend per hour by model", "spend per hour by tenant", "budget", "refusals", "spool"):
        assert topic in titles, topic


def test_compose_loads_prometheus_its_alerts_and_grafana_with_the_dashboard():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    mounted = {volume.split(":")[0] for service in ("prometheus", "grafana")
               for volume in compose["services"][service]["volumes"] if volume.startswith("./")}

    assert mounted == {"./prometheus/prometheus.yml", "./prometheus/alerts.yml", "./grafana/provisioning",
                       "./grafana/dashboards"}
    assert all((DOCKER / path).exists() for path in mounted)
    scraped = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    assert scraped["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert scraped["scrape_configs"][0]["static_configs"][0]["targets"] == ["gateway-1:8000", "gateway-2:8000"]
