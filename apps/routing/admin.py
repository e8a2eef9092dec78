"""Admin for routing: policies, the public models clients name, and the deployments behind them.

List pages select or annotate everything they show, so each costs the same few queries whatever the
number of rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import Form
from django.http import HttpRequest

from apps.proxy.cache.purge import purge_model, report_purge
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from apps.routing.table import routing_tables

if TYPE_CHECKING:  # django-stubs makes these generic; Django itself cannot subscript them
    ModelAdminBase = admin.ModelAdmin[Any]
    DeploymentInlineBase = admin.TabularInline[Deployment, PublicModel]
else:
    ModelAdminBase = admin.ModelAdmin
    DeploymentInlineBase = admin.TabularInline


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


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(RoutingConfigAdmin):
    list_display = ("name", "strategy", "max_retries", "cache_enabled", "cache_ttl_s", "model_count", "updated_at")
    list_filter = ("strategy", "cache_enabled")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    filter_horizontal = ("cache_shared_tenants",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingPolicy]:
        policies: QuerySet[RoutingPolicy] = super().get_queryset(request).annotate(model_count=Count("models"))
        return policies

    @admin.display(description="models", ordering="model_count")
    def model_count(self, policy: Any) -> int:
        return int(policy.model_count)


class DeploymentInline(DeploymentInlineBase):
    model = Deployment
    extra = 0
    fields = (
        "provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok",
        "priority", "weight", "enabled",
    )
    def get_queryset(self, request: HttpRequest) -> QuerySet[Deployment]:
        return super().get_queryset(request).select_related("provider")


@admin.register(PublicModel)
class PublicModelAdmin(RoutingConfigAdmin):
    list_display = ("name", "policy", "enabled", "deployment_count", "updated_at")
    list_filter = ("enabled", "policy", "policy__strategy")
    list_select_related = ("policy",)
    search_fields = ("name", "deployments__upstream_model")
    readonly_fields = ("created_at", "updated_at")
    inlines = (DeploymentInline,)
    actions = ("purge_cached_responses",)

    @admin.action(description="Purge cached responses of selected models", permissions=["change"])
    def purge_cached_responses(self, request: HttpRequest, queryset: QuerySet[PublicModel]) -> None:
        models = list(queryset)
        everywhere = all([purge_model(model=model.name) for model in models])
        for model in models:
            self.log_change(request, model, "Purged cached responses.")
        report_purge(self, request, f"{len(models)} model(s)", everywhere=everywhere)

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


@admin.register(Deployment)
class DeploymentAdmin(RoutingConfigAdmin):
    list_display = (
        "model", "provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok",
        "cached_input_usd_per_mtok", "priority", "weight", "enabled",
    )
    list_filter = ("provider", "model", "enabled")
    list_select_related = ("model", "provider")
    search_fields = ("model__name", "provider__name", "upstream_model")
    readonly_fields = ("created_at", "updated_at")
