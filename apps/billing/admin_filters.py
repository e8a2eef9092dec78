"""List filters for keys and the ledger.

The ledger's provider and model filters offer the configured names instead of Django's default
``SELECT DISTINCT`` over the column, which would read the whole ledger on every page view. Names of
since-deleted providers still filter when typed into the URL (?provider=old-name).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.providers.models import Provider
from apps.routing.models import PublicModel

EXPIRING_SOON = timedelta(days=7)


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Revoked"), ("no", "Not revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("expired", "Expired"), ("soon", "Expires within 7 days"), ("later", "Expires later"),
                ("never", "Never expires")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        conditions = {
            "expired": Q(expires_at__lte=now),
            "soon": Q(expires_at__gt=now, expires_at__lte=now + EXPIRING_SOON),
            "later": Q(expires_at__gt=now + EXPIRING_SOON),
            "never": Q(expires_at__isnull=True),
        }
        condition = conditions.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


class NameListFilter(admin.SimpleListFilter):
    """Exact match on a copied-name column of the ledger, offering the currently configured names."""

    column = ""

    def configured_names(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in self.configured_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.column: value})


class ProviderNameFilter(NameListFilter):
    title = "provider"
    parameter_name = "provider"
    column = "provider"

    def configured_names(self) -> list[str]:
        return list(Provider.objects.order_by("name").values_list("name", flat=True))


class PublicModelNameFilter(NameListFilter):
    title = "model"
    parameter_name = "model"
    column = "public_model"

    def configured_names(self) -> list[str]:
        return list(PublicModel.objects.order_by("name").values_list("name", flat=True))
