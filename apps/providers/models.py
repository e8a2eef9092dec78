from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from apps.providers.registry import kind_choices
from apps.providers.secrets import decrypt_secret, encrypt_secret


def validate_base_url(value: str) -> None:
    # Not URLValidator: it refuses single-label hosts (http://vllm:8000/v1), which is how
    # docker-compose and Kubernetes name the servers a gateway most often talks to.
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL with a host, e.g. https://api.openai.com/v1")


class Provider(models.Model):
    """An upstream LLM service the gateway can call, with the credentials to call it."""

    name = models.SlugField(max_length=64, unique=True, help_text="Used in config files, headers and the ledger.")
    kind = models.CharField(max_length=32, choices=kind_choices, help_text="The wire format the provider speaks.")
    base_url = models.CharField(
        max_length=500, validators=[validate_base_url], help_text="For example https://api.openai.com/v1"
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    extra_headers = models.JSONField(
        default=dict, blank=True, help_text="Headers sent with every request, e.g. OpenAI-Organization."
    )
    timeout_s = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.1)], help_text="Bound on each attempt, streams included."
    )
    enabled = models.BooleanField(default=True)
    api_version = models.CharField(
        max_length=32, blank=True,
        help_text="Azure OpenAI only: the api-version to call, e.g. 2024-10-21. Blank: the gateway's default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def set_api_key(self, raw: str) -> None:
        self.api_key_encrypted = encrypt_secret(raw) if raw else ""

    def api_key(self) -> str:
        return decrypt_secret(self.api_key_encrypted) if self.api_key_encrypted else ""
