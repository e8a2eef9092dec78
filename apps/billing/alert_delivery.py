"""Sending one budget alert: a JSON POST to each webhook (the tenant's, EDGE_BUDGET_ALERT_WEBHOOK_URL) and
an email to the tenant's addresses, through Django's email backend.

A webhook body is signed when EDGE_BUDGET_ALERT_WEBHOOK_SECRET is set: ``X-Edge-Signature:
sha256=<hex HMAC-SHA256 of "<X-Edge-Timestamp>.<body>">``, so a receiver can check both who sent it
and that it is fresh. Each POST is bounded by EDGE_BUDGET_ALERT_TIMEOUT_S and must answer 2xx. A
failed alert is tried again, all channels, on the next run: ``X-Edge-Alert-Id`` names repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail

from apps.billing.models import ApiKey, BudgetAlert


def deliver(alert: BudgetAlert) -> str | None:
    """Send ``alert`` everywhere it should go; None when every channel took it, else what failed."""
    payload = alert_payload(alert)
    errors = [error for url in webhook_urls(alert) if (error := post_webhook(url, payload)) is not None]
    recipients = [address.strip() for address in alert.tenant.alert_emails.split(",") if address.strip()]
    if recipients:
        try:
            send_mail(subject(payload), email_text(payload), settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception as exc:  # SMTP refused, unreachable, timed out: retried next run
            errors.append(f"email: {type(exc).__name__}: {exc}")
    return "; ".join(errors) or None


def webhook_urls(alert: BudgetAlert) -> list[str]:
    return [url for url in (alert.tenant.alert_webhook_url, settings.EDGE_BUDGET_ALERT_WEBHOOK_URL) if url]


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": alert.subject_kind, "id": alert.subject_id, "tenant": alert.tenant.slug}
    if alert.subject_kind == BudgetAlert.SubjectKind.KEY:
        key = ApiKey.objects.filter(pk=alert.subject_id).only("prefix", "name").first()
        subject.update(prefix=key.prefix if key else "", name=key.name if key else "")
    return {
        "type": "budget.threshold_passed",
        "id": alert.pk,
        "subject": subject,
        "period": alert.period,
        "threshold_percent": alert.threshold_percent,
        "budget_usd": format(alert.budget_usd, "f"),
        "spent_usd": format(alert.spent_usd, "f"),
        "crossed_at": alert.crossed_at.isoformat(),
    }


def post_webhook(url: str, payload: dict[str, Any]) -> str | None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Edge-Alert-Id": str(payload["id"]),
               "User-Agent": "llm-edge-budget-alerts"}
    if settings.EDGE_BUDGET_ALERT_WEBHOOK_SECRET:
        headers.update(sign(body, settings.EDGE_BUDGET_ALERT_WEBHOOK_SECRET, int(time.time())))
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=settings.EDGE_BUDGET_ALERT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"{url}: {type(exc).__name__}: {exc}"
    return None if response.is_success else f"{url}: HTTP {response.status_code}"


def sign(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Edge-Timestamp": str(timestamp), "X-Edge-Signature": f"sha256={digest}"}


def subject(payload: dict[str, Any]) -> str:
    who = payload["subject"]
    name = f"key {who['prefix']}" if who["kind"] == "key" else f"tenant {who['tenant']}"  # ASCII: a readable header
    return f"[LLM Edge] {name} has spent {payload['threshold_percent']}% of its budget ({payload['period']})"


def email_text(payload: dict[str, Any]) -> str:
    who = payload["subject"]
    name = f"API key {who['prefix']}… ({who['name'] or 'unnamed'}) of tenant {who['tenant']}" \
        if who["kind"] == "key" else f"Tenant {who['tenant']}"
    return (
        f"{name} has spent {payload['spent_usd']} USD of its {payload['budget_usd']} USD budget for period "
        f"{payload['period']}: past {payload['threshold_percent']}%.\n\n"
        "Requests are refused once the budget is spent. Raise the budget in the gateway's admin, or wait for "
        "the next period.\n"
    )
