"""`manage.py edge_key create|list|revoke`: gateway API keys from the command line.

``create`` prints the raw key alone on the last line of stdout, so scripts can take it with
``tail -1``; it is shown this once and stored nowhere (only its hash is).
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.billing.models import ApiKey, Tenant
from apps.billing.services import create_api_key, revoke_api_key
from apps.routing.models import PublicModel

LIST_COLUMNS = ("prefix", "name", "models", "created", "expires", "status")
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length or 0


class Command(BaseCommand):
    help = "Create, list and revoke gateway API keys."

    def add_arguments(self, parser: ArgumentParser) -> None:
        assert isinstance(parser, CommandParser)
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        create = actions.add_parser("create", help="Issue a key; the raw key is printed once, on the last line.")
        create.add_argument("--tenant", required=True, help="Tenant slug.")
        create.add_argument("--name", default="", help="What the key is for, e.g. the calling service.")
        create.add_argument("--models", default="", help="Comma-separated model names; default: every model.")
        create.add_argument("--expires-days", type=int, help="Expire this many days from now; default: never.")
        listing = actions.add_parser("list", help="A tenant's keys and their status (never the keys themselves).")
        listing.add_argument("--tenant", required=True, help="Tenant slug.")
        revoke = actions.add_parser("revoke", help="Revoke the key with this display prefix.")
        revoke.add_argument("prefix", help="The key's prefix as `list` shows it, e.g. sk-edge-AbCd1234.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self.create_key(options["tenant"], options["name"], options["models"], options["expires_days"])
        elif action == "list":
            self.list_keys(options["tenant"])
        else:
            self.revoke_key(options["prefix"])

    def create_key(self, slug: str, name: str, models: str, expires_days: int | None) -> None:
        tenant = _tenant(slug)
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        if len(name.strip()) > NAME_MAX_LENGTH:
            raise CommandError(f"--name is longer than {NAME_MAX_LENGTH} characters")
        allowed = sorted({model.strip() for model in models.split(",") if model.strip()})
        unknown = set(allowed) - set(PublicModel.objects.filter(name__in=allowed).values_list("name", flat=True))
        if unknown:  # a warning, not an error: keys are often issued before the model is configured
            self.stderr.write(f"warning: these models are not configured yet: {', '.join(sorted(unknown))}")
        if not tenant.is_active:
            self.stderr.write(f"warning: tenant {tenant.slug} is inactive; the key works once it is activated")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        key, raw = create_api_key(tenant=tenant, name=name.strip(), allowed_models=allowed, expires_at=expires_at)
        self.stdout.write(f"tenant:  {tenant.slug}")
        self.stdout.write(f"prefix:  {key.prefix}")
        self.stdout.write(f"models:  {', '.join(key.allowed_models) or 'all'}")
        self.stdout.write(f"expires: {_when(key.expires_at)}")
        self.stdout.write("The key below is shown only this once; store it now.")
        self.stdout.write(raw)

    def list_keys(self, slug: str) -> None:
        tenant = _tenant(slug)
        keys = list(ApiKey.objects.filter(tenant=tenant).select_related("tenant").order_by("-created_at", "-id"))
        if not tenant.is_active:
            self.stdout.write(f"tenant {tenant.slug} is inactive: none of its keys work")
        if not keys:
            self.stdout.write(f"tenant {tenant.slug} has no keys")
            return
        rows = [LIST_COLUMNS, *(_row(key) for key in keys)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(LIST_COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def revoke_key(self, prefix: str) -> None:
        key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no key has the prefix {prefix!r} (see `edge_key list --tenant SLUG`)")
        if key.revoked_at is not None:
            revoked = _when(key.revoked_at)
            self.stdout.write(f"key {key.prefix} (tenant {key.tenant.slug}) was already revoked on {revoked}")
            return
        revoke_api_key(key=key)
        self.stdout.write(
            f"revoked key {key.prefix} (tenant {key.tenant.slug}); "
            f"gateway processes refuse it within {settings.EDGE_KEY_CACHE_TTL_S:g} s"
        )


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant has the slug {slug!r}")
    return tenant


def _row(key: ApiKey) -> tuple[str, ...]:
    models = ",".join(key.allowed_models) or "all"
    return (key.prefix, key.name or "-", models, _when(key.created_at), _when(key.expires_at), key.status)


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment is not None else "never"
