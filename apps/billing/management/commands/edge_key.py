"""`manage.py edge_key create|list|revoke`: gateway API keys from the command line.

``create`` prints the raw key alone on the last line of stdout, so scripts can take it with
``tail -1``; it is shown this once and stored nowhere (only its hash is). Its limits and budget are
checked by the columns they are stored in (apps.billing.services.create_api_key), as admin's are.
"""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.billing.keys import REPORTS_SCOPE, SCOPES
from apps.billing.limits_text import budget_text, limits_text
from apps.billing.models import ApiKey, BudgetPeriod, Tenant
from apps.billing.services import create_api_key, revoke_api_key
from apps.routing.models import PublicModel
from edge_project.model_fields import default_of

LIST_COLUMNS = ("prefix", "name", "models", "rpm", "tpm", "parallel", "budget", "created", "expires", "status")
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length or 0
DEFAULT_PERIOD = default_of(ApiKey, "budget_period")
# The key's limit fields, as create's options name them.
LIMIT_OPTIONS = {"rpm": "--rpm", "tpm": "--tpm", "max_parallel": "--max-parallel", "budget_usd": "--budget-usd",
                 "budget_period": "--budget-period"}


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
        create.add_argument("--rpm", type=int, help="Requests per minute; default: unlimited.")
        create.add_argument("--tpm", type=int, help="Tokens per minute (prompt + output cap); default: unlimited.")
        create.add_argument("--max-parallel", type=int, help="Requests in flight at once; default: unlimited.")
        create.add_argument("--budget-usd", type=_usd, help="USD per budget period, e.g. 100.00; default: none.")
        create.add_argument("--budget-period", choices=BudgetPeriod.values,
                            help=f"Budget period, in the tenant's time zone; default: {DEFAULT_PERIOD}.")
        create.add_argument("--scope", action="append", choices=SCOPES, default=[],
                            help="Grant a scope (repeatable): reports = read the tenant's usage and costs "
                                 "(/v1/organization/...). Default: none, the key only calls models.")
        listing = actions.add_parser("list", help="A tenant's keys and their status (never the keys themselves).")
        listing.add_argument("--tenant", required=True, help="Tenant slug.")
        revoke = actions.add_parser("revoke", help="Revoke the key with this display prefix.")
        revoke.add_argument("prefix", help="The key's prefix as `list` shows it, e.g. sk-edge-AbCd1234.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            limits = {field: options[field] for field in LIMIT_OPTIONS if options[field] is not None}
            limits["reports_scope"] = REPORTS_SCOPE in options["scope"]
            self.create_key(options["tenant"], options["name"], options["models"], options["expires_days"], limits)
        elif action == "list":
            self.list_keys(options["tenant"])
        else:
            self.revoke_key(options["prefix"])

    def create_key(self, slug: str, name: str, models: str, expires_days: int | None, limits: dict[str, Any]) -> None:
        tenant = _tenant(slug)
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        if "budget_period" in limits and "budget_usd" not in limits:
            raise CommandError("--budget-period needs --budget-usd (the amount per period)")
        if len(name.strip()) > NAME_MAX_LENGTH:
            raise CommandError(f"--name is longer than {NAME_MAX_LENGTH} characters")
        allowed = sorted({model.strip() for model in models.split(",") if model.strip()})
        unknown = set(allowed) - set(PublicModel.objects.filter(name__in=allowed).values_list("name", flat=True))
        if unknown:  # a warning, not an error: keys are often issued before the model is configured
            self.stderr.write(f"warning: these models are not configured yet: {', '.join(sorted(unknown))}")
        if not tenant.is_active:
            self.stderr.write(f"warning: tenant {tenant.slug} is inactive; the key works once it is activated")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            key, raw = create_api_key(
                tenant=tenant, name=name.strip(), allowed_models=allowed, expires_at=expires_at, **limits
            )
        except ValidationError as exc:
            raise CommandError(_option_errors(exc)) from exc
        self.stdout.write(f"tenant:  {tenant.slug}")
        self.stdout.write(f"prefix:  {key.prefix}")
        self.stdout.write(f"models:  {', '.join(key.allowed_models) or 'all'}")
        self.stdout.write(f"expires: {_when(key.expires_at)}")
        self.stdout.write(f"limits:  {limits_text(key)}")
        self.stdout.write(f"scopes:  {REPORTS_SCOPE if key.reports_scope else 'none'}")
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


def _usd(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # not a ValueError: argparse would let it out as a traceback
        raise ArgumentTypeError(f"{text!r} is not an amount in USD such as 100.00") from None


def _option_errors(exc: ValidationError) -> str:
    """"--rpm: Ensure this value is greater than or equal to 1." for each refused option."""
    return "\n".join(f"{LIMIT_OPTIONS.get(field, field)}: {' '.join(messages)}"
                     for field, messages in exc.message_dict.items())


def _row(key: ApiKey) -> tuple[str, ...]:
    models = ",".join(key.allowed_models) or "all"
    limits = (_count(key.rpm), _count(key.tpm), _count(key.max_parallel), budget_text(key) or "-")
    return (key.prefix, key.name or "-", models, *limits, _when(key.created_at), _when(key.expires_at), key.status)


def _count(limit: int | None) -> str:
    return "-" if limit is None else str(limit)  # exact, for scripts reading the list


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment is not None else "never"
