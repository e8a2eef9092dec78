"""The response cache's admin actions, added to the pages of the rows a purge is keyed by.

The cache is proxy's, and proxy is the top layer: billing's tenant page and routing's model page
know nothing of it. So this module appends *Purge cached responses* to the ModelAdmin classes
those apps register (importing them first, whatever order autodiscovery runs in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.billing.admin import TenantAdmin
from apps.proxy.cache.purge import purge_model, purge_tenant
from apps.routing.admin import PublicModelAdmin

PurgeAction = Callable[[Any, HttpRequest, QuerySet[Any]], None]


def purge_action(purge: Callable[[Any], bool], noun: str) -> PurgeAction:
    """An admin action purging the cached responses of each selected row with ``purge(row)``."""

    # One name on every page, so the action reads the same in a changelist's POST wherever it is.
    @admin.action(description=f"Purge cached responses of selected {noun}s", permissions=["change"])
    def purge_cached_responses(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        rows = list(queryset)
        everywhere = all([purge(row) for row in rows])  # a list: every row is purged, even after a failure
        for row in rows:
            model_admin.log_change(request, row, "Purged cached responses.")
        report_purge(model_admin, request, f"{len(rows)} {noun}(s)", everywhere=everywhere)

    return purge_cached_responses


def report_purge(model_admin: Any, request: HttpRequest, what: str, *, everywhere: bool) -> None:
    """The admin message after a purge action."""
    if everywhere:
        model_admin.message_user(request, f"Purged the cached responses of {what} in every gateway process.",
                                 messages.SUCCESS)
    else:
        model_admin.message_user(
            request, f"Purged the cached responses of {what} from this process's memory only: Redis is "
            "unreachable, so other processes, and answers stored in Redis, keep them until they expire.",
            messages.WARNING,
        )


def add_action(model_admin: type[admin.ModelAdmin[Any]], action: PurgeAction) -> None:
    model_admin.actions = (*(model_admin.actions or ()), action)


add_action(TenantAdmin, purge_action(lambda tenant: purge_tenant(tenant_id=tenant.pk), "tenant"))
add_action(PublicModelAdmin, purge_action(lambda model: purge_model(model=model.name), "model"))
