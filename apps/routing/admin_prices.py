"""Prices on admin's deployment pages: an edit of them is a new price version, never an overwrite.

The form's price fields show the deployment's newest version. Saving different ones stores the row's
other fields as they are and adds a version (apps.routing.price_versions.set_prices), effective from
the page's "prices effective from" (blank: now); the history is listed below, read-only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime
from django.http import HttpRequest

from apps.routing.models import Deployment, PriceVersion
from apps.routing.price_versions import PRICE_FIELDS, prices_differ, set_prices

if TYPE_CHECKING:  # django-stubs makes these generic; Django itself cannot subscript them
    PriceVersionInlineBase = admin.TabularInline[PriceVersion, Deployment]
    DeploymentFormBase = forms.ModelForm[Deployment]
    AnyModelForm = forms.ModelForm[Any]
else:
    PriceVersionInlineBase = admin.TabularInline
    DeploymentFormBase = AnyModelForm = forms.ModelForm

ADMIN_NOTE = "changed in admin"


class DeploymentForm(DeploymentFormBase):
    prices_effective_from = forms.SplitDateTimeField(
        required=False, widget=AdminSplitDateTime,
        help_text="When changed prices take effect. Blank: now. Requests already recorded keep their cost; re-rate "
                  "a past period from the ledger's page or with edge_rerate.",
    )
    price_note = forms.CharField(required=False, max_length=500, help_text="Why the prices change.")

    class Meta:
        model = Deployment
        fields = "__all__"


def submitted_prices(form: AnyModelForm) -> dict[str, Decimal | None]:
    return {name: form.cleaned_data.get(name) for name in PRICE_FIELDS}


def keep_stored_prices(deployment: Deployment) -> None:
    """Put the stored prices back on the instance a form filled, so its save() changes no price."""
    stored = Deployment.objects.filter(pk=deployment.pk).values(*PRICE_FIELDS).first()
    for name, value in (stored or {}).items():
        setattr(deployment, name, value)


def version_prices(
    deployment: Deployment, prices: dict[str, Decimal | None], *, created: bool,
    effective_from: datetime | None = None, note: str = "",
) -> None:
    """After the deployment is saved: its first version, or a new one if the form changed its prices."""
    if created or prices_differ(deployment, **prices):
        set_prices(
            deployment=deployment, effective_from=effective_from or (deployment.created_at if created else None),
            note=note or ADMIN_NOTE, **prices,  # type: ignore[arg-type]  # the form requires input and output
        )


class PriceVersionInline(PriceVersionInlineBase):
    model = PriceVersion
    extra = 0
    can_delete = False
    ordering = ("-effective_from",)
    fields = ("effective_from", *PRICE_FIELDS, "note", "created_at")
    readonly_fields = fields
    verbose_name_plural = "price history (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
