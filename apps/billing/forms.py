"""Admin forms for keys and ledger corrections. Issuing and correcting go through apps.billing.services.

A key's limit fields are made from its model fields, so admin accepts exactly what the columns hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime, FilteredSelectMultiple
from django.db import models
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.billing.models import LIMITED_FIELDS, ApiKey, LedgerEntry, Tenant
from apps.routing.models import PublicModel
from edge_project.model_fields import bounds_of, default_of

if TYPE_CHECKING:  # django-stubs makes ModelForm generic; Django itself cannot subscript it
    ApiKeyModelForm = forms.ModelForm[ApiKey]
else:
    ApiKeyModelForm = forms.ModelForm


def model_name_choices(current: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Configured model names, plus any a key already allows that have since been renamed or deleted
    (so saving an old key's other fields does not silently drop them)."""
    names = list(PublicModel.objects.order_by("name").values_list("name", flat=True))
    gone = sorted(set(current) - set(names))
    return [(name, name) for name in names] + [(name, f"{name} (no longer configured)") for name in gone]


class ModelNamesWidget(FilteredSelectMultiple):
    """Admin's two-box selector for a plain choice field.

    Its script moves the boxes to the start of the select's parent element; admin's related-field
    wrapper normally provides that parent, and without one the boxes would land before the label.
    """

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(name, value, attrs, renderer))


def allowed_models_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        required=False,
        widget=ModelNamesWidget("models", is_stacked=False),
        help_text="Models this key may use. Choose none to allow every model, including ones added later.",
    )


def limit_formfield_options(db_field: models.Field[Any, Any]) -> dict[str, Any]:
    """What a limit's form field needs beyond Django's defaults: its model field's own minimum. Django
    gives the column type's (a tpm of -5 would be refused as "at least 0", and the browser's number
    input would offer 0); the model's says "at least 1"."""
    if db_field.name in LIMITED_FIELDS and isinstance(db_field, models.IntegerField):
        return {"min_value": bounds_of(db_field.model, db_field.name).minimum}
    return {}


def limit_fields() -> dict[str, forms.Field]:
    """ApiKey's limit fields as its ModelForm would make them: the column's validators, labels and help."""
    fields = dict(forms.fields_for_model(ApiKey, fields=LIMITED_FIELDS, formfield_callback=_limit_formfield))
    make_period_optional(fields)
    return fields


def _limit_formfield(db_field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    return db_field.formfield(**{**limit_formfield_options(db_field), **kwargs})


def make_period_optional(fields: dict[str, forms.Field]) -> None:
    # A browser always sends the select's value; a scripted POST without one gets the column's default.
    fields["budget_period"].required = False


def period_or_default(period: str | None) -> str:
    return period or str(default_of(ApiKey, "budget_period"))


def refuse_past(expires_at: datetime | None) -> datetime | None:
    if expires_at is not None and expires_at <= timezone.now():
        raise forms.ValidationError("Choose a time in the future, or leave blank for a key that never expires.")
    return expires_at


class ApiKeyCreateForm(forms.Form):
    """Not a ModelForm: the key row is made by services.create_api_key, which alone knows the raw key."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("slug"))
    name = forms.CharField(max_length=200, required=False, help_text="Who or what uses this key.")
    allowed_models = allowed_models_field()
    expires_at = forms.SplitDateTimeField(
        label="Expires", required=False, widget=AdminSplitDateTime, help_text="Blank: never expires. Times in UTC."
    )
    reports_scope = forms.BooleanField(
        label="Reports scope", required=False, help_text=ApiKey._meta.get_field("reports_scope").help_text
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Choices are read per form, not at import: models are added while the gateway runs.
        self.fields["allowed_models"].choices = model_name_choices()  # type: ignore[attr-defined]
        self.fields.update(limit_fields())

    def clean_expires_at(self) -> datetime | None:
        return refuse_past(self.cleaned_data.get("expires_at"))

    def clean_budget_period(self) -> str:
        return period_or_default(self.cleaned_data.get("budget_period"))

    def limits(self) -> dict[str, Any]:
        """The cleaned limits, as services.create_api_key takes them."""
        return {name: self.cleaned_data[name] for name in LIMITED_FIELDS}


class ApiKeyChangeForm(ApiKeyModelForm):
    """An issued key's name, models, expiry, limits and budget may change; its tenant and secret never do."""

    allowed_models = allowed_models_field()

    class Meta:
        model = ApiKey
        fields = ["name", "allowed_models", "expires_at", "reports_scope", *LIMITED_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.allowed_models or []
        self.fields["allowed_models"].choices = model_name_choices(current)  # type: ignore[attr-defined]
        make_period_optional(self.fields)

    def clean_budget_period(self) -> str:
        return period_or_default(self.cleaned_data.get("budget_period"))

    def clean_allowed_models(self) -> list[str]:
        return sorted(set(self.cleaned_data.get("allowed_models") or []))

    def clean_expires_at(self) -> datetime | None:
        expires_at: datetime | None = self.cleaned_data.get("expires_at")
        if "expires_at" in self.changed_data:  # an already-past expiry may stay as it was
            return refuse_past(expires_at)
        return expires_at


class AdjustmentForm(forms.Form):
    amount_usd = forms.DecimalField(
        label="Amount (USD)",
        max_digits=LedgerEntry._meta.get_field("cost_usd").max_digits,
        decimal_places=LedgerEntry._meta.get_field("cost_usd").decimal_places,
        help_text="Added to what the request cost: negative for a credit, positive for a charge.",
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: kept with the adjustment for whoever reads the ledger later.",
    )

    def clean_amount_usd(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount_usd"]
        if amount == 0:
            raise forms.ValidationError("An adjustment of zero changes nothing.")
        return amount
