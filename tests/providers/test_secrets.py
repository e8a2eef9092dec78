from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from apps.providers.models import Provider

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def make_provider(api_key: str) -> Provider:
    provider = Provider(name="openai-main", kind="openai", base_url="https://api.openai.com/v1")
    provider.set_api_key(api_key)
    provider.save()
    return provider


@pytest.mark.django_db
def test_it_stores_provider_keys_encrypted(settings):
    settings.EDGE_ENCRYPTION_KEYS = [OLD_KEY]
    provider = make_provider("sk-live-secret")

    stored = Provider.objects.get(pk=provider.pk)
    assert "sk-live-secret" not in stored.api_key_encrypted
    assert stored.api_key() == "sk-live-secret"


@pytest.mark.django_db
def test_it_rotates_provider_keys_to_the_newest_encryption_key(settings):
    settings.EDGE_ENCRYPTION_KEYS = [OLD_KEY]
    provider = make_provider("sk-live-secret")

    settings.EDGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("edge_rotate_secrets")

    settings.EDGE_ENCRYPTION_KEYS = [NEW_KEY]  # the old key is gone; the secret must still read
    assert Provider.objects.get(pk=provider.pk).api_key() == "sk-live-secret"


@pytest.mark.django_db
def test_it_reports_secrets_no_configured_key_can_read(settings):
    settings.EDGE_ENCRYPTION_KEYS = [OLD_KEY]
    make_provider("sk-live-secret")

    settings.EDGE_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match="openai-main"):
        call_command("edge_rotate_secrets")
