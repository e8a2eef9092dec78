"""Provider admin: the upstream key goes in and is never shown again."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from apps.providers.models import Provider
from tests.admin.conftest import count_queries
from tests.factories import make_provider, unique

pytestmark = pytest.mark.django_db
SECRET = "sk-upstream-do-not-leak-3f9a"


def form_data(provider: Provider, **changes: Any) -> dict[str, Any]:
    data = {
        "name": provider.name, "kind": provider.kind, "base_url": provider.base_url, "enabled": "on",
        "timeout_s": str(provider.timeout_s), "api_key": "", "extra_headers": "{}",
    }
    return {**data, **changes}


def change_url(provider: Provider) -> str:
    return reverse("admin:providers_provider_change", args=[provider.pk])


def test_it_never_renders_the_stored_key(admin_client):
    provider = make_provider("https://api.example.com/v1", api_key=SECRET)

    page = admin_client.get(change_url(provider)).content.decode()

    assert SECRET not in page
    assert provider.api_key_encrypted not in page
    assert 'name="api_key"' in page and 'type="password"' in page
    assert "Leave blank to keep it" in page


def test_it_keeps_the_key_when_the_field_is_left_blank(admin_client):
    provider = make_provider("https://api.example.com/v1", api_key=SECRET)

    response = admin_client.post(change_url(provider), form_data(provider, timeout_s="12.5"))

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.timeout_s == 12.5
    assert provider.api_key() == SECRET


def test_it_replaces_the_key_when_a_new_one_is_typed(admin_client):
    provider = make_provider("https://api.example.com/v1", api_key=SECRET)

    admin_client.post(change_url(provider), form_data(provider, api_key="sk-rotated"))

    provider.refresh_from_db()
    assert provider.api_key() == "sk-rotated"


def test_it_removes_the_key_when_asked(admin_client):
    provider = make_provider("https://api.example.com/v1", api_key=SECRET)

    admin_client.post(change_url(provider), form_data(provider, clear_api_key="on"))

    provider.refresh_from_db()
    assert not provider.has_api_key


def test_it_refuses_a_new_key_and_removal_together(admin_client):
    provider = make_provider("https://api.example.com/v1", api_key=SECRET)

    response = admin_client.post(change_url(provider), form_data(provider, api_key="sk-new", clear_api_key="on"))

    assert "not both" in response.content.decode()
    provider.refresh_from_db()
    assert provider.api_key() == SECRET


def test_it_stores_a_new_providers_key_encrypted_and_never_echoes_it(admin_client):
    name = unique("prov")
    data = {"name": name, "kind": "openai", "base_url": "https://api.example.com/v1", "enabled": "on",
            "timeout_s": "30", "api_key": SECRET, "extra_headers": '{"OpenAI-Organization": "org-1"}'}

    invalid = admin_client.post(reverse("admin:providers_provider_add"), {**data, "base_url": "not a url"})
    created = admin_client.post(reverse("admin:providers_provider_add"), data)

    assert invalid.status_code == 200 and SECRET not in invalid.content.decode()
    assert created.status_code == 302
    provider = Provider.objects.get(name=name)
    assert provider.api_key() == SECRET and SECRET not in provider.api_key_encrypted
    assert provider.extra_headers == {"OpenAI-Organization": "org-1"}


def test_it_accepts_a_provider_on_a_single_label_host(admin_client):
    provider = make_provider("https://api.example.com/v1")

    response = admin_client.post(change_url(provider), form_data(provider, base_url="http://vllm:8000/v1"))

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.base_url == "http://vllm:8000/v1"


def test_it_refuses_extra_headers_that_are_not_a_flat_object(admin_client):
    provider = make_provider("https://api.example.com/v1")

    response = admin_client.post(change_url(provider), form_data(provider, extra_headers='["X-Team", "ml"]'))

    assert response.status_code == 200
    assert "JSON object of header names" in response.content.decode()


def test_it_lists_whether_each_provider_has_a_key(admin_client):
    with_key = make_provider("https://a.example.com/v1", api_key=SECRET)
    without_key = make_provider("https://b.example.com/v1", api_key="")

    page = admin_client.get(reverse("admin:providers_provider_changelist")).content.decode()

    assert "API key set" in page and SECRET not in page
    row_with = page.split(f">{with_key.name}<")[1].split("</tr>")[0]
    row_without = page.split(f">{without_key.name}<")[1].split("</tr>")[0]
    assert 'alt="True"' in row_with and 'alt="False"' in row_without


def test_it_lists_providers_in_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    url = reverse("admin:providers_provider_changelist")
    make_provider("https://a.example.com/v1")
    few = count_queries(lambda: admin_client.get(url))
    for _ in range(15):
        make_provider("https://a.example.com/v1")

    with django_assert_max_num_queries(few):
        assert admin_client.get(url).status_code == 200
