"""The new provider kinds and Azure's api_version in config as code and in the admin form."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError

from apps.providers.forms import ProviderForm
from apps.providers.models import Provider
from tests.harness.config_commands import apply_text, delete_all_configuration, export

pytestmark = pytest.mark.django_db

CONFIG = """\
providers:
  - {name: azure-eu, kind: azure_openai, base_url: "https://my-resource.openai.azure.com",
     api_version: "2025-01-01-preview"}
  - {name: claude, kind: anthropic, base_url: "https://api.anthropic.com/v1"}
  - {name: google, kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta"}
"""


@pytest.fixture
def empty_database() -> None:
    delete_all_configuration()


def test_it_applies_and_exports_every_kind_and_the_api_version_unchanged(empty_database: None, tmp_path: Path):
    apply_text(tmp_path, CONFIG)
    exported = export()

    stored = {p.name: (p.kind, p.api_version) for p in Provider.objects.all()}
    assert stored == {"azure-eu": ("azure_openai", "2025-01-01-preview"), "claude": ("anthropic", ""),
                      "google": ("gemini", "")}
    assert "api_version: 2025-01-01-preview" in exported
    assert exported.count("api_version") == 1  # providers without one export none
    assert "providers: 0 created, 0 updated, 3 unchanged" in apply_text(tmp_path, exported)


def test_it_refuses_an_api_version_that_is_not_text(empty_database: None, tmp_path: Path):
    with pytest.raises(CommandError, match="api_version"):
        apply_text(tmp_path, CONFIG.replace('"2025-01-01-preview"', "[1]"))

    assert not Provider.objects.exists()  # all or nothing


def test_the_admin_form_offers_the_new_kinds_and_saves_the_api_version():
    form = ProviderForm(data={"name": "azure-admin", "kind": "azure_openai", "base_url": "https://r.openai.azure.com",
                              "timeout_s": "30", "enabled": "on", "extra_headers": "{}",
                              "api_version": "2024-10-21", "api_key": "azure-key"})

    assert form.is_valid(), form.errors
    provider = form.save()
    assert (provider.kind, provider.api_version, provider.api_key()) == ("azure_openai", "2024-10-21", "azure-key")
    kinds = {value for value, _ in form.fields["kind"].choices}  # type: ignore[attr-defined]
    assert {"openai", "openai_compatible", "azure_openai", "anthropic", "gemini"} <= kinds
