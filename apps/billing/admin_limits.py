"""What tenant and key pages show of a row's rate limits and budget (apps.billing.models.Limited).

Both admins derive from ``LimitsAdmin`` and lay their limit fields out in ``limits_fieldset``, which
ends with the budget's live figures (``budget_now``: its current period, spent, reserved and
remaining), read from admission's counters (apps.billing.admission.budget_status), not the row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Field
from django.http import HttpRequest

from apps.billing.admission import budget_status
from apps.billing.forms import limit_formfield_options
from apps.billing.limits import key_subject, tenant_subject
from apps.billing.limits_text import budget_status_text, limits_text
from apps.billing.models import LIMITED_FIELDS, ApiKey, Limited, Tenant

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; Django itself cannot subscript it
    from django.contrib.admin.options import _FieldOpts

    LimitsAdminBase = admin.ModelAdmin[Any]
else:
    LimitsAdminBase = admin.ModelAdmin

LIMITS_TITLE = "Limits and budget"


def limits_fieldset(*extra: str, live: bool = True) -> tuple[str, _FieldOpts]:
    """The "Limits and budget" fieldset: the Limited fields, then ``extra`` ones (a tenant's time zone),
    then the budget's live figures (not on a form that creates the row: there are none yet)."""
    return (LIMITS_TITLE, {
        "fields": (*LIMITED_FIELDS, *extra, *(("budget_now",) if live else ())),
        "description": "Blank: unlimited. A request must fit both its key's limits and its tenant's; changes "
                       "reach every gateway process within EDGE_KEY_CACHE_TTL_S.",
    })


class LimitsAdmin(LimitsAdminBase):
    """Base of the tenant and key admins."""

    def formfield_for_dbfield(self, db_field: Field[Any, Any], request: HttpRequest, **kwargs: Any) -> Any:
        return super().formfield_for_dbfield(db_field, request, **{**limit_formfield_options(db_field), **kwargs})

    @admin.display(description="limits")
    def limits(self, row: Limited) -> str:
        return limits_text(row)

    @admin.display(description="budget now")
    def budget_now(self, row: Limited) -> str:
        """The current period's figures as the gateways count them (the ledger's, where none count yet)."""
        if row.pk is None:
            return "no budget"
        # As stored: a form shown again with errors holds the values it refused (a time zone that is none).
        if isinstance(row, ApiKey):
            subject = key_subject(ApiKey.objects.select_related("tenant").get(pk=row.pk))
        else:
            subject = tenant_subject(Tenant.objects.get(pk=row.pk))
        return budget_status_text(budget_status(subject)) if subject.budget is not None else "no budget"
