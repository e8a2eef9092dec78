"""What tenant and key pages show of a row's rate limits and budget (apps.billing.models.Limited).

Both admins derive from ``LimitsAdmin`` and lay their limit fields out in ``limits_fieldset``. The live
figures of a budget (its current period, spent, reserved, remaining) come from admission's state,
not from the row: they belong here too, as display methods of ``LimitsAdmin`` that both admins
list in ``readonly_fields`` and pass to ``limits_fieldset`` after the editable ones, so both pages
show them alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Field
from django.http import HttpRequest

from apps.billing.forms import limit_formfield_options
from apps.billing.limits_text import limits_text
from apps.billing.models import LIMITED_FIELDS, Limited

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; Django itself cannot subscript it
    from django.contrib.admin.options import _FieldOpts

    LimitsAdminBase = admin.ModelAdmin[Any]
else:
    LimitsAdminBase = admin.ModelAdmin

LIMITS_TITLE = "Limits and budget"


def limits_fieldset(*extra: str) -> tuple[str, _FieldOpts]:
    """The "Limits and budget" fieldset: the Limited fields, then ``extra`` ones (a tenant's time zone)."""
    return (LIMITS_TITLE, {
        "fields": (*LIMITED_FIELDS, *extra),
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
