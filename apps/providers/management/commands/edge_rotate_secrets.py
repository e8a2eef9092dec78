"""Re-encrypt every provider API key under the first EDGE_ENCRYPTION_KEYS entry.

Rotation: put the new key first in EDGE_ENCRYPTION_KEYS (old ones after it), deploy, run this,
then drop the old keys. Secrets no configured key can read are reported and left untouched.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.providers.models import Provider
from apps.providers.secrets import SecretUnreadable, reencrypt_secret


class Command(BaseCommand):
    help = "Re-encrypt provider API keys under the newest EDGE_ENCRYPTION_KEYS entry."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        rotated, unreadable = 0, []
        for provider in Provider.objects.select_for_update().exclude(api_key_encrypted=""):
            try:
                provider.api_key_encrypted = reencrypt_secret(provider.api_key_encrypted)
            except SecretUnreadable:
                unreadable.append(provider.name)
                continue
            provider.save(update_fields=["api_key_encrypted", "updated_at"])
            rotated += 1
        self.stdout.write(f"re-encrypted {rotated} provider key(s) under the newest key")
        if unreadable:
            raise CommandError(f"no configured key decrypts the API key of: {', '.join(unreadable)}")
