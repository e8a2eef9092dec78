"""Admin for tenants, API keys and the ledger.

Keys are issued and revoked only through apps.billing.services; a new key's raw value is rendered
once, in the response to the form that created it, and kept nowhere (not in the session, not in
messages). The ledger is read-only: corrections are new adjustment rows, made by the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join

from apps.billing import (
    admin_alerts,  # noqa: F401  (registers the budget alerts' page)
    services,
)
from apps.billing.admin_filters import (
    ExpiryFilter,
    ProviderNameFilter,
    PublicModelNameFilter,
    RevokedFilter,
)
from apps.billing.admin_ledger import CreatedRangeFilter, LedgerChangeList, totals_context
from apps.billing.admin_limits import LimitsAdmin, limits_fieldset
from apps.billing.admin_rerate import rerate_page, rerate_redirect
from apps.billing.csv_export import ledger_csv_response
from apps.billing.forms import AdjustmentForm, ApiKeyChangeForm, ApiKeyCreateForm
from apps.billing.limits_text import limits_text
from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.billing.reports.admin_views import report_urls

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; Django itself cannot subscript it
    from django.contrib.admin.options import _FieldOpts

    LedgerAdminBase = admin.ModelAdmin[LedgerEntry]
else:
    LedgerAdminBase = admin.ModelAdmin

Fieldsets = list[tuple[str | None, "_FieldOpts"]]
NEW_KEY_FIELDSETS: Fieldsets = [
    (None, {"fields": ["tenant", "name", "allowed_models", "expires_at", "reports_scope"]}),
    limits_fieldset(live=False),
]


def admin_form(form: forms.Form, fieldsets: Fieldsets, model_admin: admin.ModelAdmin[Any]) -> helpers.AdminForm:
    """Lay out a plain form the way admin lays out a model's (the stubs insist on a ModelForm; Django doesn't)."""
    return helpers.AdminForm(form, fieldsets, {}, model_admin=model_admin)  # type: ignore[arg-type]


@admin.register(Tenant)
class TenantAdmin(LimitsAdmin):
    list_display = ("slug", "name", "is_active", "limits", "key_count", "costs", "created_at")
    list_filter = ("is_active",)
    search_fields = ("slug", "name")
    readonly_fields = ("created_at", "budget_now", "costs")
    # Django 6's default for a scheme-less URL, said now (5.2 warns until it is said).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("slug", "name", "is_active", "costs")}),
        limits_fieldset("timezone"),
        ("Budget alerts", {"fields": ("alert_emails", "alert_webhook_url"),
                           "description": "Sent once for each share of a budget passed in a period "
                                          "(EDGE_BUDGET_ALERT_THRESHOLDS), for the tenant and for each of its keys."}),
        ("History", {"fields": ("created_at",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        tenants: QuerySet[Tenant] = super().get_queryset(request).annotate(key_count=Count("api_keys"))
        return tenants

    def get_urls(self) -> list[URLPattern]:
        return [*report_urls(self), *super().get_urls()]

    @admin.display(description="costs")
    def costs(self, tenant: Any) -> str:  # unsaved (no pk) on the add page
        if tenant.pk is None:
            return "-"
        return format_html('<a href="{}">Report and FOCUS export</a>',
                           reverse("admin:billing_tenant_report", args=[tenant.pk]))

    @admin.display(description="keys", ordering="key_count")
    def key_count(self, tenant: Any) -> str:
        url = reverse("admin:billing_apikey_changelist") + f"?tenant__id__exact={tenant.pk}"
        return format_html('<a href="{}">{}</a>', url, tenant.key_count)


@admin.register(ApiKey)
class ApiKeyAdmin(LimitsAdmin):
    form = ApiKeyChangeForm
    list_display = ("prefix", "tenant", "name", "allowed_models_list", "limits", "created_at", "expires_at", "status")
    list_filter = ("tenant", RevokedFilter, ExpiryFilter)
    list_select_related = ("tenant",)
    search_fields = ("prefix", "name", "tenant__slug")
    # key_hash is never listed anywhere: it is editable=False, so no form offers it either.
    fieldsets = (
        (None, {"fields": ("tenant", "prefix", "status", "name", "allowed_models", "expires_at", "reports_scope",
                           "created_at", "revoked_at")}),
        limits_fieldset(),
    )
    readonly_fields = ("tenant", "prefix", "status", "created_at", "revoked_at", "budget_now")
    actions = ("revoke_selected",)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: ledger rows keep pointing at the key that made them

    @admin.display(description="allowed models")
    def allowed_models_list(self, key: ApiKey) -> str:
        return ", ".join(key.allowed_models) if key.allowed_models else "all models"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        return key.status

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            services.revoke_api_key(key=key)
            self.log_change(request, key, "Revoked.")
        self.message_user(request, f"Revoked {len(keys)} key(s). Gateways refuse them within seconds.",
                          messages.SUCCESS)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        """Issue a key with services.create_api_key and answer with the page showing it, once."""
        if not self.has_add_permission(request) or IS_POPUP_VAR in request.GET:
            raise PermissionDenied
        form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid() and (issued := self.issue_key(form)) is not None:
            key, raw_key = issued
            self.log_addition(request, key, [{"added": {}}])
            return self.key_created_response(request, key, raw_key)
        adminform = admin_form(form, NEW_KEY_FIELDSETS, self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Issue API key",
            "adminform": adminform,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": form.errors,
            "preserved_filters": self.get_preserved_filters(request),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    def issue_key(self, form: ApiKeyCreateForm) -> tuple[ApiKey, str] | None:
        """The new key and its raw value; None, with the form's errors, when the service refuses a value."""
        try:
            return services.create_api_key(
                tenant=form.cleaned_data["tenant"], name=form.cleaned_data["name"],
                allowed_models=form.cleaned_data["allowed_models"], expires_at=form.cleaned_data["expires_at"],
                reports_scope=form.cleaned_data["reports_scope"], **form.limits(),
            )
        except ValidationError as exc:  # a check only the model makes (a negative budget): shown on its field
            form.add_error(None, exc)
            return None

    def key_created_response(self, request: HttpRequest, key: ApiKey, raw_key: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": key,
            "raw_key": raw_key,
            "limits": limits_text(key),
        }
        response = TemplateResponse(request, "admin/billing/apikey/key_created.html", context)
        add_never_cache_headers(response)  # no copy of the page (and the key) in any cache
        return response


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LedgerAdminBase):
    list_display = (
        "created_at", "request_id", "tenant", "key_prefix", "public_model", "provider", "status", "http_status",
        "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "latency_ms", "usage_source", "cache_status",
    )
    # The time range first: every other filter applies inside it (apps.billing.admin_ledger).
    list_filter = (CreatedRangeFilter, "tenant", "status", ProviderNameFilter, PublicModelNameFilter, "kind",
                   "cache_status")
    list_select_related = ("tenant", "api_key")
    # Pages follow (created_at, id) cursors; sorting by another column would need an index per column.
    sortable_by = ()
    search_fields = ("request_id",)
    search_help_text = "An exact request id (the x-request-id header); the request's adjustments are listed too."
    actions = ("export_selected_csv", "rerate_selected")
    # Counting the whole ledger on every page view, and per-filter counts, cost a scan each.
    show_full_result_count = False
    list_per_page = 100
    show_facets = admin.ShowFacets.NEVER
    fieldsets = (
        (None, {"fields": ("request_id", "kind", "created_at", "tenant", "api_key", "status", "http_status",
                           "error_type")}),
        ("Route", {"fields": ("endpoint", "public_model", "provider", "upstream_model", "deployment_id",
                              "stream")}),
        ("Usage and cost", {"fields": ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
                                       "usage_source", "input_usd_per_mtok", "output_usd_per_mtok",
                                       "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "cost_usd",
                                       "latency_ms", "ttft_ms")}),
        ("Cache", {"fields": ("cache_status", "cost_avoided_usd")}),
        ("Corrections", {"fields": ("adjusts", "note", "adjustment_list", "net_cost")}),
    )
    readonly_fields = ("adjustment_list", "net_cost")

    # Nobody adds, edits or deletes ledger rows here; the change page renders read-only.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LedgerEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LedgerEntry | None = None) -> bool:
        return False

    def may_adjust(self, request: HttpRequest) -> bool:
        # The model's own "add" permission grants corrections; the admin never offers plain adds.
        return request.user.has_perm(f"{self.opts.app_label}.add_{self.opts.model_name}")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[LedgerEntry], search_term: str
    ) -> tuple[QuerySet[LedgerEntry], bool]:
        # Exact, so the unique index answers it; a substring search would scan the ledger.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(request_id=term) | Q(adjusts_id=term)), False

    @admin.display(description="key", ordering="api_key__prefix")
    def key_prefix(self, entry: LedgerEntry) -> str:
        return entry.api_key.prefix if entry.api_key else ""

    @admin.display(description="adjustments")
    def adjustment_list(self, entry: LedgerEntry) -> str:
        rows = entry.adjustments.order_by("created_at")
        if not rows:
            return "none"
        return format_html_join(
            "", '<div><a href="{}">{}</a>: {} USD, {}</div>',
            ((reverse("admin:billing_ledgerentry_change", args=[row.pk]), row.request_id,
              format(row.cost_usd, "f"), row.note) for row in rows),
        )

    @admin.display(description="net cost (USD)")
    def net_cost(self, entry: LedgerEntry) -> str:
        adjusted = entry.adjustments.aggregate(total=Sum("cost_usd"))["total"] or 0
        return format(entry.cost_usd + adjusted, "f")

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name=f"{name}_export"),
            path("<path:object_id>/adjust/", self.admin_site.admin_view(self.adjust_view), name=f"{name}_adjust"),
            path("rerate/", self.admin_site.admin_view(self.rerate_view), name=f"{name}_rerate"),
            *super().get_urls(),
        ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[LedgerChangeList]:
        return LedgerChangeList

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and isinstance(context.get("cl"), LedgerChangeList):  # not for redirects, or an action's CSV
            context.update(totals_context(context["cl"]))
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        return super().change_view(
            request, object_id, form_url, {"may_adjust": self.may_adjust(request), **(extra_context or {})}
        )

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet[LedgerEntry]) -> HttpResponseBase:
        return ledger_csv_response(queryset)

    def has_adjust_permission(self, request: HttpRequest) -> bool:  # the re-rate action's permission
        return self.may_adjust(request)

    @admin.action(description="Re-rate a period of the selected requests' deployment…", permissions=["adjust"])
    def rerate_selected(self, request: HttpRequest, queryset: QuerySet[LedgerEntry]) -> HttpResponseBase:
        return rerate_redirect(self, queryset)

    def rerate_view(self, request: HttpRequest) -> HttpResponse:
        fields = ("deployment", "start", "end", "price_version", "input_usd_per_mtok", "output_usd_per_mtok",
                  "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "note")
        return rerate_page(self, request, allowed=self.may_adjust(request),
                           fieldsets=lambda form: admin_form(form, [(None, {"fields": fields})], self))

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """Every row the changelist would show for the same query string, across all its pages."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:  # what the changelist itself answers to a mangled query string
            return HttpResponseRedirect(reverse("admin:billing_ledgerentry_changelist") + "?e=1")
        return ledger_csv_response(changelist.queryset)

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        entry = self.get_object(request, unquote(object_id))
        if entry is None:
            raise Http404("No such ledger entry.")
        if not self.may_adjust(request) or entry.kind != LedgerEntry.Kind.REQUEST:
            raise PermissionDenied
        form = AdjustmentForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            adjustment = services.record_adjustment(
                entry=entry, cost_delta_usd=form.cleaned_data["amount_usd"], note=form.cleaned_data["note"]
            )
            self.log_addition(request, adjustment, f"Adjusts {entry.request_id}.")
            self.message_user(request, f"Recorded adjustment {adjustment.request_id}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:billing_ledgerentry_change", args=[entry.pk]))
        adminform = admin_form(form, [(None, {"fields": ["amount_usd", "note"]})], self)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust {entry.request_id}",
            "opts": self.opts,
            "entry": entry,
            "adminform": adminform,
            "errors": form.errors,
            "recorded_cost": format(entry.cost_usd, "f"),
            "net_cost": self.net_cost(entry),
        }
        return TemplateResponse(request, "admin/billing/ledgerentry/adjust.html", context)
