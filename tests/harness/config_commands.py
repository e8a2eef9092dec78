"""Running `edge_apply` and `edge_export` as an operator would, for tests of config as code."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.providers.models import Provider
from apps.routing.models import Deployment, PublicModel, RoutingPolicy


def apply_text(directory: Path, text: str) -> str:
    """Write ``text`` as a config file in ``directory``, apply it, and return what the command printed."""
    path = directory / "config.yaml"
    path.write_text(text)
    out = StringIO()
    call_command("edge_apply", str(path), stdout=out)
    return out.getvalue()


def export() -> str:
    out = StringIO()
    call_command("edge_export", stdout=out)
    return out.getvalue()


def delete_all_configuration() -> None:
    # In SQL: Django refuses to delete what adjustments PROTECT, and the ledger refuses DELETE itself
    # (billing migration 0008); TRUNCATE, a test's privilege, is not a row deletion.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LedgerEntry._meta.db_table}")
    ApiKey.objects.all().delete()
    Tenant.objects.all().delete()
    Deployment.objects.all().delete()
    PublicModel.objects.all().delete()
    RoutingPolicy.objects.all().delete()
    Provider.objects.all().delete()
