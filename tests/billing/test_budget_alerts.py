"""Budget alerts: each share of a budget passed in a period is sent once, by webhook and email, however
often the task runs; a real Celery worker on the Redis broker runs it as production would."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from apps.billing import alerts
from apps.billing.models import ApiKey, BudgetAlert, LedgerEntry, Tenant
from apps.billing.tasks import send_budget_alerts
from tests.factories import make_key, make_tenant, unique
from tests.harness.celery_worker import CeleryWorker, WebhookReceiver
from tests.harness.gateway import GatewayProcess
from tests.harness.waiting import wait_until

SECRET = "whsec-test-0123456789"
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


def spend(tenant: Tenant, key: ApiKey | None, usd: str) -> None:
    LedgerEntry.objects.create(
        request_id=unique("req-alert"), tenant=tenant, api_key=key, endpoint="chat.completions", public_model="m",
        status="ok", http_status=200, usage_source="provider", cost_usd=Decimal(usd), created_at=timezone.now(),
    )


def budgeted_key(*, budget: str, emails: str = "", webhook: str = "") -> tuple[Tenant, ApiKey]:
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(alert_emails=emails, alert_webhook_url=webhook)
    key, _ = make_key(tenant)
    ApiKey.objects.filter(pk=key.pk).update(budget_usd=Decimal(budget), budget_period="month")
    tenant.refresh_from_db()
    key.refresh_from_db()
    return tenant, key


def signed_correctly(headers: dict[str, str], body: bytes) -> bool:
    expected = hmac.new(SECRET.encode(), f"{headers['x-edge-timestamp']}.".encode() + body, hashlib.sha256)
    return headers["x-edge-signature"] == f"sha256={expected.hexdigest()}"


def runs_done(worker: CeleryWorker) -> int:
    return worker.log().count("apps.billing.tasks.send_budget_alerts[") // 2  # "received" and "succeeded" lines


def test_a_worker_sends_each_threshold_once_however_often_the_task_runs(live_db, tmp_path: Path):
    mail_dir = tmp_path / "mail"
    with WebhookReceiver() as hooks:
        tenant, key = budgeted_key(budget="10", emails="ops@example.com, finance@example.com", webhook=hooks.url)
        env = {"EDGE_BUDGET_ALERT_WEBHOOK_SECRET": SECRET, "EMAIL_BACKEND": FILE_BACKEND,
               "EMAIL_FILE_PATH": str(mail_dir)}
        with CeleryWorker(log_path=tmp_path / "worker.log", env=env) as worker:
            spend(tenant, key, "6")  # 60 %
            send_budget_alerts.delay()
            wait_until(lambda: len(hooks.received) == 1, timeout_s=20, what="the 50 % alert")
            send_budget_alerts.delay()
            send_budget_alerts.delay()
            spend(tenant, key, "2.5")  # 85 %
            send_budget_alerts.delay()
            wait_until(lambda: len(hooks.received) == 2, timeout_s=20, what="the 80 % alert")
            spend(tenant, key, "2")  # 105 %
            for _ in range(3):
                send_budget_alerts.delay()
            wait_until(lambda: runs_done(worker) == 7, timeout_s=30, what=f"seven runs:\n{worker.log()}")

    assert [hook.json()["threshold_percent"] for hook in hooks.received] == [50, 80, 100]
    assert all(signed_correctly(hook.headers, hook.body) for hook in hooks.received)
    assert hooks.received[0].json()["subject"] == {"kind": "key", "id": key.pk, "tenant": tenant.slug,
                                                   "prefix": key.prefix, "name": "test"}
    assert hooks.received[2].json()["spent_usd"] == "10.5000000000"
    mail = "".join(path.read_text() for path in mail_dir.iterdir())
    assert mail.count("Subject: [LLM Edge] key") == 3
    assert "To: ops@example.com, finance@example.com" in mail
    assert BudgetAlert.objects.filter(subject_id=key.pk, delivered_at__isnull=False).count() == 3


@pytest.mark.django_db
def test_it_sends_only_the_highest_of_thresholds_passed_at_once(settings, mailoutbox):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tenant, key = budgeted_key(budget="1", emails="ops@example.com")
    Tenant.objects.filter(pk=tenant.pk).update(budget_usd=Decimal(100))
    spend(tenant, key, "1.25")  # the key: 125 %; the tenant: 1.25 %

    first, again = alerts.send_budget_alerts(), alerts.send_budget_alerts()

    assert (first.recorded, first.delivered, again.recorded, again.delivered) == (3, 1, 0, 0)
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ops@example.com"]
    assert "has spent 100% of its budget" in mailoutbox[0].subject
    assert list(BudgetAlert.objects.filter(subject_id=key.pk).order_by("threshold_percent")
                .values_list("threshold_percent", "superseded")) == [(50, True), (80, True), (100, False)]


@pytest.mark.django_db
def test_it_tries_a_failed_webhook_again_on_the_next_run_and_then_stops(settings):
    settings.EDGE_BUDGET_ALERT_ATTEMPTS = 2
    with WebhookReceiver() as hooks:
        tenant, key = budgeted_key(budget="10", webhook=hooks.url)
        spend(tenant, key, "5")
        hooks.status = 503

        runs = [alerts.send_budget_alerts() for _ in range(3)]

    alert = BudgetAlert.objects.get(subject_id=key.pk)
    assert [(run.delivered, run.failed) for run in runs] == [(0, 1), (0, 1), (0, 0)]
    assert (alert.attempts, alert.delivered_at, alert.last_error) == (2, None, f"{hooks.url}: HTTP 503")
    assert len({hook.headers["x-edge-alert-id"] for hook in hooks.received}) == 1 and len(hooks.received) == 2


@pytest.mark.django_db
def test_a_webhook_that_recovers_gets_the_alert_once(settings):
    with WebhookReceiver() as hooks:
        tenant, key = budgeted_key(budget="10", webhook=hooks.url)
        spend(tenant, key, "9")
        hooks.status = 500
        alerts.send_budget_alerts()
        hooks.status = 204
        alerts.send_budget_alerts()
        alerts.send_budget_alerts()

    assert [hook.json()["threshold_percent"] for hook in hooks.received] == [80, 80]
    assert BudgetAlert.objects.get(subject_id=key.pk, threshold_percent=80).delivered_at is not None


@pytest.mark.django_db
def test_thresholds_come_from_the_setting(settings):
    settings.EDGE_BUDGET_ALERT_THRESHOLDS = ["25", "90"]
    tenant, key = budgeted_key(budget="4")
    spend(tenant, key, "1")

    alerts.send_budget_alerts()

    assert list(BudgetAlert.objects.filter(subject_id=key.pk).values_list("threshold_percent", flat=True)) == [25]


def test_without_a_broker_the_gateway_runs_the_schedule_itself(live_db, tmp_path: Path):
    env = {"REDIS_URL": "", "EDGE_SCHEDULE": "budget-alerts=0.2,verify-rollups=0"}  # `make run`'s situation
    with WebhookReceiver() as hooks:
        tenant, key = budgeted_key(budget="10", webhook=hooks.url)
        spend(tenant, key, "5")
        with GatewayProcess(spool_dir=tmp_path / "spool", log_path=tmp_path / "gateway.log", env=env):
            wait_until(lambda: len(hooks.received) == 1, timeout_s=20, what="the 50 % alert")
            spend(tenant, key, "3")
            wait_until(lambda: len(hooks.received) == 2, timeout_s=20, what="the 80 % alert")

    assert [hook.json()["threshold_percent"] for hook in hooks.received] == [50, 80]
    assert "x-edge-signature" not in hooks.received[0].headers  # no secret set: unsigned


@pytest.mark.django_db
def test_admin_lists_alerts_and_offers_no_edits(admin_client):
    tenant, key = budgeted_key(budget="2")
    spend(tenant, key, "1.7")
    alerts.send_budget_alerts()

    listing = admin_client.get("/admin/billing/budgetalert/").content.decode()
    alert = BudgetAlert.objects.get(subject_id=key.pk, superseded=False)
    change = admin_client.post(f"/admin/billing/budgetalert/{alert.pk}/change/", {"threshold_percent": "1"})

    assert tenant.slug in listing and "Add budget alert" not in listing
    assert change.status_code == 403 and BudgetAlert.objects.get(pk=alert.pk).threshold_percent == 80
