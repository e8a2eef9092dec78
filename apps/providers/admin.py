"""Admin for providers. The upstream API key is write-only: pages say whether one is set, never what it is."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.providers.forms import ProviderForm
from apps.providers.models import Provider
from apps.routing.admin import RoutingConfigAdmin

MAIN_FIELDS = ("name", "kind", "base_url", "enabled", "timeout_s")


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
            (None, {"fields": MAIN_FIELDS}),
            ("Credentials", {"fields": credentials}),
            ("Advanced", {"fields": ("extra_headers", "api_version"), "classes": ("collapse",)}),
        ]
        if obj is not None:
            fieldsets.append(("History", {"fields": ("created_at", "updated_at")}))
        return fieldsets

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, provider: Provider) -> bool:
        return provider.has_api_key
