"""The reports scope: off by default, granted by edge_key and admin, carried by KeyInfo; the report settings' check."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.billing.keys import REPORTS_SCOPE, hash_key, load_key_info
from apps.billing.models import ApiKey
from apps.proxy.checks import check_report_settings
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db


def create(*args: str) -> tuple[str, ApiKey]:
    out = StringIO()
    call_command("edge_key", "create", *args, stdout=out, stderr=StringIO())
    raw = out.getvalue().splitlines()[-1]
    return out.getvalue(), ApiKey.objects.get(key_hash=hash_key(raw))


def test_edge_key_grants_the_reports_scope_only_when_asked():
    tenant = make_tenant()

    plain_output, plain = create("--tenant", tenant.slug)
    reader_output, reader = create("--tenant", tenant.slug, "--scope", "reports")

    assert (plain.reports_scope, reader.reports_scope) == (False, True)
    assert "scopes:  none" in plain_output and "scopes:  reports" in reader_output
    assert load_key_info(plain.key_hash).scopes == frozenset()  # type: ignore[union-attr]
    assert load_key_info(reader.key_hash).scopes == {REPORTS_SCOPE}  # type: ignore[union-attr]


def test_the_key_info_carries_the_scope_in_the_lookup_it_already_makes(django_assert_num_queries: Any):
    _, reader = create("--tenant", make_tenant().slug, "--scope", "reports")

    with django_assert_num_queries(1):
        assert load_key_info(reader.key_hash).scopes == {REPORTS_SCOPE}  # type: ignore[union-attr]


def test_admin_issues_a_key_with_the_reports_scope(admin_client):
    tenant = make_tenant()

    admin_client.post(reverse("admin:billing_apikey_add"), {
        "tenant": tenant.pk, "name": "finance dashboard", "reports_scope": "on", "budget_period": "month"})

    assert ApiKey.objects.get(tenant=tenant).reports_scope is True


def test_a_blank_invoice_issuer_is_caught_at_start(settings: Any):
    assert check_report_settings() == []
    settings.EDGE_INVOICE_ISSUER_NAME = " "

    assert [message.id for message in check_report_settings()] == ["edge.E120"]
