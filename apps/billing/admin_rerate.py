"""Re-rating from admin: the ledger's "Re-rate a period…" action opens a form for a deployment and a period,
prefilled from the selected rows, and calls apps.billing.rerate.rerate (the service edge_rerate calls too).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.billing.models import LedgerEntry
from apps.billing.rerate import rerate
from apps.billing.rollups import HOUR, hour_of
from apps.routing.models import Deployment, PriceVersion
from apps.routing.price_schedule import or_input_price
from apps.routing.prices import Prices

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")
PRICE: dict[str, Any] = {"max_digits": 14, "decimal_places": 6, "min_value": Decimal(0), "required": False}


class RerateForm(forms.Form):
    deployment = forms.ModelChoiceField(queryset=Deployment.objects.select_related("model", "provider"))
    start = forms.DateTimeField(label="From", help_text="First moment re-rated (requests received from then).")
    end = forms.DateTimeField(label="To", help_text="First moment not re-rated.")
    price_version = forms.ModelChoiceField(
        queryset=PriceVersion.objects.all(), required=False,
        help_text="Re-rate at one of the deployment's price versions, or give the prices below.",
    )
    input_usd_per_mtok = forms.DecimalField(label="Input (USD / M tokens)", **PRICE)
    output_usd_per_mtok = forms.DecimalField(label="Output (USD / M tokens)", **PRICE)
    cached_input_usd_per_mtok = forms.DecimalField(label="Cached input", help_text="Blank: the input price.", **PRICE)
    cache_write_usd_per_mtok = forms.DecimalField(label="Cache write", help_text="Blank: the input price.", **PRICE)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                           help_text="Why: kept on every adjustment row.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        version = data.get("price_version")
        if version is not None and any(data.get(name) is not None for name in PRICE_FIELDS):
            raise forms.ValidationError("Choose a price version or give prices, not both.")
        if version is None and (data.get("input_usd_per_mtok") is None or data.get("output_usd_per_mtok") is None):
            raise forms.ValidationError("Choose a price version, or give at least the input and output prices.")
        deployment = data.get("deployment")
        if version is not None and deployment is not None and version.deployment_id != deployment.pk:
            raise forms.ValidationError("That price version is another deployment's.")
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise forms.ValidationError("The period must end after it starts.")
        return data

    def prices(self) -> Prices | None:
        data = self.cleaned_data
        if data["price_version"] is not None:
            return None
        given = data["input_usd_per_mtok"]
        return Prices(
            input_usd_per_mtok=given, output_usd_per_mtok=data["output_usd_per_mtok"],
            cached_input_usd_per_mtok=or_input_price(data["cached_input_usd_per_mtok"], given),
            cache_write_usd_per_mtok=or_input_price(data["cache_write_usd_per_mtok"], given),
        )


def rerate_initial(queryset: QuerySet[LedgerEntry]) -> dict[str, str]:
    """The selection's deployment and the whole hours its rows span, for the form's first values."""
    span = queryset.filter(kind=LedgerEntry.Kind.REQUEST).exclude(deployment_id=None).aggregate(
        deployment=Min("deployment_id"), first=Min("created_at"), last=Max("created_at"))
    if span["deployment"] is None:
        return {}
    return {"deployment": str(span["deployment"]), "start": _text(hour_of(span["first"])),
            "end": _text(hour_of(span["last"]) + HOUR)}


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def rerate_redirect(model_admin: ModelAdmin[Any], queryset: QuerySet[LedgerEntry]) -> HttpResponseRedirect:
    url = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_rerate")
    return HttpResponseRedirect(f"{url}?{urlencode(rerate_initial(queryset))}")


def rerate_page(model_admin: ModelAdmin[Any], request: HttpRequest, *, allowed: bool,
                fieldsets: Any) -> HttpResponse:
    if not allowed:
        raise PermissionDenied
    form = RerateForm(request.POST if request.method == "POST" else None, initial=request.GET.dict())
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            done = rerate(deployment_id=data["deployment"].pk, start=data["start"], end=data["end"],
                          note=data["note"], prices=form.prices(), price_version=data["price_version"])
        except ValueError as error:
            form.add_error(None, str(error))
        else:
            model_admin.message_user(request, f"Re-rated {done.requests} requests: {done.adjustments} adjustments, "
                                              f"{done.amount_usd:f} USD in all.", messages.SUCCESS)
            changelist = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
            return HttpResponseRedirect(f"{changelist}?kind__exact=adjustment")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Re-rate a period", "opts": model_admin.opts, "adminform": fieldsets(form),
        "errors": form.errors,
    }
    return TemplateResponse(request, "admin/billing/ledgerentry/rerate.html", context)
