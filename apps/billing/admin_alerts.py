"""Budget alerts in admin, read-only: what was sent (or is still being tried), to whom, and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from apps.billing.models import BudgetAlert

if TYPE_CHECKING:
    BudgetAlertAdminBase = admin.ModelAdmin[BudgetAlert]
else:
    BudgetAlertAdminBase = admin.ModelAdmin


@admin.register(BudgetAlert)
class BudgetAlertAdmin(BudgetAlertAdminBase):
    list_display = ("crossed_at", "tenant", "subject_kind", "subject_id", "period", "threshold_percent", "spent_usd",
                    "budget_usd", "delivered_at", "superseded", "attempts", "last_error")
    list_filter = ("subject_kind", "threshold_percent", "superseded", ("delivered_at", admin.EmptyFieldListFilter))
    list_select_related = ("tenant",)
    search_fields = ("tenant__slug", "period")
    date_hierarchy = None
    ordering = ("-crossed_at",)

    # The alerts task alone writes these rows: one per threshold and period is what keeps alerts from repeating.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False
