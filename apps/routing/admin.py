"""Admin for what the routing table is built from: providers, policies, the public models clients
name, and the deployments behind them.

Providers are registered here, not in apps.providers: saving one must drop routing's table, and
providers, the bottom layer, know nothing of routing. Their upstream API key is write-only: pages
say whether one is set, never what it is (apps.providers.forms.ProviderForm).

List pages select or annotate everything they show, so each costs the same few queries whatever the
number of rows. Deployments also show their live state (breaker, recent success rate, latency,
TTFT), read for the whole page in one Redis pipeline (apps.routing.status), and offer actions to
force a breaker open or closed in every gateway process, or to close it now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import Form
from django.http import HttpRequest

from apps.providers.forms import ProviderForm
from apps.providers.models import Provider
from apps.routing.admin_prices import (
    DeploymentForm,
    PriceVersionInline,
    keep_stored_prices,
    submitted_prices,
    version_prices,
)
from apps.routing.models import BreakerOverride, Deployment, PublicModel, RoutingPolicy
from apps.routing.status import DeploymentStatus, close_breakers, deployment_statuses
from apps.routing.table import routing_tables

if TYPE_CHECKING:  # django-stubs makes these generic; Django itself cannot subscript them
    ModelAdminBase = admin.ModelAdmin[Any]
    DeploymentInlineBase = admin.TabularInline[Deployment, PublicModel]
else:
    ModelAdminBase = admin.ModelAdmin
    DeploymentInlineBase = admin.TabularInline

PROVIDER_MAIN_FIELDS = ("name", "kind", "base_url", "enabled", "timeout_s")


class RoutingConfigAdmin(ModelAdminBase):
    """For rows the routing table is built from.

    Admin is served by a gateway process, so that process drops its table once an edit commits (the
    next request reloads it); other processes pick the edit up within EDGE_CONFIG_TTL_S. After
    commit, not before: a reload racing the transaction would otherwise cache the old rows.
    """

    def save_model(self, request: HttpRequest, obj: Any, form: Form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(routing_tables.invalidate)

    def save_related(self, request: HttpRequest, form: Form, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # inline deployments
        transaction.on_commit(routing_tables.invalidate)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(routing_tables.invalidate)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        transaction.on_commit(routing_tables.invalidate)


@admin.register(Provider)
class ProviderAdmin(RoutingConfigAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "api_key_set", "timeout_s", "updated_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")
    readonly_fields = ("api_key_set", "created_at", "updated_at")

    def get_fieldsets(self, request: HttpRequest, obj: Provider | None = None) -> Any:
        if obj is None:
            credentials: tuple[str, ...] = ("api_key",)
        elif obj.has_api_key:
            credentials = ("api_key_set", "api_key", "clear_api_key")
        else:  # ProviderForm offers no "remove" checkbox when there is nothing to remove
            credentials = ("api_key_set", "api_key")
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": PROVIDER_MAIN_FIELDS}),
            ("Credentials", {"fields": credentials}),
            ("Advanced", {"fields": ("extra_headers", "api_version"), "classes": ("collapse",)}),
        ]
        if obj is not None:
            fieldsets.append(("History", {"fields": ("created_at", "updated_at")}))
        return fieldsets

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, provider: Provider) -> bool:
        return provider.has_api_key


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(RoutingConfigAdmin):
    list_display = (
        "name", "strategy", "max_retries", "breaker_failure_threshold", "cache_enabled", "cache_ttl_s", "model_count",
        "updated_at",
    )
    list_filter = ("strategy", "cache_enabled")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    filter_horizontal = ("cache_shared_tenants",)
    fieldsets = (
        (None, {"fields": ("name", "strategy", "fallbacks")}),
        ("Retries and failover", {"fields": (
            "max_retries", "same_deployment_retries", "backoff_start_ms", "backoff_multiplier", "backoff_cap_s",
            "retry_after_cap_s", "retry_budget_ratio",
        )}),
        ("Deadlines", {"fields": ("request_deadline_s", "stream_idle_timeout_s", "stream_deadline_s")}),
        ("Circuit breakers", {"fields": (
            "breaker_failure_threshold", "breaker_reset_s", "breaker_success_threshold",
        )}),
        ("Hybrid strategy weights", {"fields": (
            "hybrid_cost_weight", "hybrid_latency_weight", "hybrid_reliability_weight",
        )}),
        ("Response cache", {"fields": ("cache_enabled", "cache_ttl_s", "cache_shared_tenants")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingPolicy]:
        policies: QuerySet[RoutingPolicy] = super().get_queryset(request).annotate(model_count=Count("models"))
        return policies

    @admin.display(description="models", ordering="model_count")
    def model_count(self, policy: Any) -> int:
        return int(policy.model_count)


class LiveStatusColumns:
    """Breaker and health columns; rows carry a ``live_status`` set once per page (or are read one by one)."""

    @staticmethod
    def _status(deployment: Any) -> DeploymentStatus | None:
        if not getattr(deployment, "pk", None):
            return None
        status = getattr(deployment, "live_status", None)
        if status is None:
            status = deployment.live_status = deployment_statuses([deployment])[deployment.pk]
        return status

    @admin.display(description="breaker")
    def breaker_state(self, deployment: Any) -> str:
        status = self._status(deployment)
        return status.breaker if status else "–"

    @admin.display(description="success rate (recent)")
    def success_rate(self, deployment: Any) -> str:
        status = self._status(deployment)
        return status.success_text() if status else "–"

    @admin.display(description="latency")
    def latency(self, deployment: Any) -> str:
        status = self._status(deployment)
        return status.latency_text() if status else "–"

    @admin.display(description="TTFT")
    def ttft(self, deployment: Any) -> str:
        status = self._status(deployment)
        return status.ttft_text() if status else "–"


class DeploymentInline(LiveStatusColumns, DeploymentInlineBase):
    model = Deployment
    extra = 0
    fields = (
        "provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok",
        "cache_write_usd_per_mtok", "max_output_tokens", "priority", "weight", "enabled", "breaker_state",
        "success_rate", "latency", "ttft",
    )  # breaker_override is set on the deployment's own page or by the list's actions
    readonly_fields = ("breaker_state", "success_rate", "latency", "ttft")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deployment]:
        return super().get_queryset(request).select_related("provider", "model__policy")


@admin.register(PublicModel)
class PublicModelAdmin(RoutingConfigAdmin):
    list_display = ("name", "policy", "enabled", "deployment_count", "updated_at")
    list_filter = ("enabled", "policy", "policy__strategy")
    list_select_related = ("policy",)
    search_fields = ("name", "deployments__upstream_model")
    readonly_fields = ("created_at", "updated_at")
    inlines = (DeploymentInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PublicModel]:
        # A subquery, not Count("deployments"): searching by upstream model joins deployments a second
        # time, and a joined count would multiply.
        counts = Deployment.objects.filter(model=OuterRef("pk")).order_by().values("model").annotate(n=Count("pk"))
        models: QuerySet[PublicModel] = super().get_queryset(request).annotate(
            deployment_count=Coalesce(Subquery(counts.values("n")), 0)
        )
        return models

    @admin.display(description="deployments", ordering="deployment_count")
    def deployment_count(self, model: Any) -> int:
        return int(model.deployment_count)

    def save_formset(self, request: HttpRequest, form: Form, formset: Any, change: bool) -> None:
        """Deployments' prices change through versions (effective now), as on a deployment's own page."""
        if formset.model is not Deployment:
            return super().save_formset(request, form, formset, change)
        edited = []
        for deployment_form in formset.forms:
            if deployment_form in formset.deleted_forms or not deployment_form.has_changed():
                continue
            deployment = deployment_form.instance
            created = deployment.pk is None
            edited.append((deployment, submitted_prices(deployment_form), created))
            if not created:
                keep_stored_prices(deployment)
        super().save_formset(request, form, formset, change)
        for deployment, prices, created in edited:
            version_prices(deployment, prices, created=created)


@admin.register(Deployment)
class DeploymentAdmin(LiveStatusColumns, RoutingConfigAdmin):
    list_display = (
        "model", "provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok",
        "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "priority", "weight", "enabled",
        "breaker_state", "success_rate", "latency", "ttft",
    )
    list_filter = ("provider", "model", "enabled", "breaker_override")
    list_select_related = ("model__policy", "provider")
    search_fields = ("model__name", "provider__name", "upstream_model")
    readonly_fields = ("created_at", "updated_at", "breaker_state", "success_rate", "latency", "ttft")
    actions = ("force_breaker_open", "force_breaker_closed", "breaker_automatic", "close_breaker_now")
    form = DeploymentForm
    inlines = (PriceVersionInline,)

    def save_model(self, request: HttpRequest, obj: Any, form: Form, change: bool) -> None:
        prices = submitted_prices(form)  # type: ignore[arg-type]  # a DeploymentForm
        if change:
            keep_stored_prices(obj)
        super().save_model(request, obj, form, change)
        version_prices(obj, prices, created=not change, effective_from=form.cleaned_data.get("prices_effective_from"),
                       note=form.cleaned_data.get("price_note") or "")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deployment]:
        return super().get_queryset(request).select_related("model__policy", "provider")

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        page = list(changelist.result_list)
        statuses = deployment_statuses(page)  # one Redis round trip for the whole page
        for deployment in page:
            deployment.live_status = statuses[deployment.pk]
        return changelist

    def _override(self, request: HttpRequest, queryset: QuerySet[Deployment], override: str, done: str) -> None:
        count = queryset.update(breaker_override=override)
        transaction.on_commit(routing_tables.invalidate)
        self.message_user(request, f"{count} deployment(s): {done}. Every gateway process follows within "
                                   "EDGE_CONFIG_TTL_S.", messages.SUCCESS)

    @admin.action(description="Force breaker open (send no traffic)")
    def force_breaker_open(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._override(request, queryset, BreakerOverride.OPEN, "breaker forced open")

    @admin.action(description="Force breaker closed (always use)")
    def force_breaker_closed(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._override(request, queryset, BreakerOverride.CLOSED, "breaker forced closed")

    @admin.action(description="Breaker back to automatic")
    def breaker_automatic(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._override(request, queryset, BreakerOverride.AUTO, "breaker automatic again")

    @admin.action(description="Close breaker now (forget recent failures)")
    def close_breaker_now(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        close_breakers(ids)
        self.message_user(request, f"{len(ids)} breaker(s) closed in every gateway process.", messages.SUCCESS)
