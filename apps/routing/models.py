from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from apps.providers.models import Provider

NON_NEGATIVE = [MinValueValidator(Decimal(0))]


class Strategy(models.TextChoices):
    FAILOVER = "failover", "Failover (priority order)"
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted", "Weighted random"


class RoutingPolicy(models.Model):
    """How a model's deployments are tried: in which order and how persistently."""

    name = models.SlugField(max_length=64, unique=True)
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.FAILOVER)
    max_retries = models.PositiveSmallIntegerField(
        default=2, help_text="Further attempts after the first, across deployments."
    )
    # --- response cache (issue 5) ---
    # Off by default: answering from a cache changes what temperature > 0 means, so operators opt in.
    cache_enabled = models.BooleanField(
        default=False, help_text="Answer repeated identical requests from the response cache."
    )
    cache_ttl_s = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)],
        help_text="How long a cached answer is served; a request's own TTL can only shorten it.",
    )
    cache_shared_tenants = models.ManyToManyField(
        "billing.Tenant", blank=True, related_name="shared_cache_policies",
        help_text="These tenants share one cache namespace for this policy's models; others stay private.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "routing policies"

    def __str__(self) -> str:
        return self.name


class PublicModel(models.Model):
    """A model name clients send (``"model": "gpt-4o-mini"``), served by one or more deployments."""

    name = models.CharField(max_length=200, unique=True, help_text="The name clients put in requests.")
    policy = models.ForeignKey(RoutingPolicy, on_delete=models.PROTECT, related_name="models")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One provider's copy of a model, with its prices in USD per million tokens."""

    model = models.ForeignKey(PublicModel, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(max_length=200, help_text="The model id the provider expects.")
    # USD per million tokens; six places cover every published per-token price.
    input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    output_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    cached_input_usd_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, validators=NON_NEGATIVE, null=True, blank=True,
        help_text="Blank: cached input tokens cost the input price.",
    )
    priority = models.PositiveSmallIntegerField(default=1, help_text="Lower is tried first by failover.")
    weight = models.PositiveSmallIntegerField(default=1, help_text="Share of traffic for weighted routing.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "provider", "upstream_model"], name="unique_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} → {self.provider.name}/{self.upstream_model}"
