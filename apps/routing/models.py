from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.providers.models import Provider

NON_NEGATIVE = [MinValueValidator(Decimal(0))]


class Strategy(models.TextChoices):
    FAILOVER = "failover", "Failover (priority order)"
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted", "Weighted random"
    LEAST_LATENCY = "least_latency", "Least latency (moving average, with exploration)"
    COST = "cost", "Cheapest for the request"
    HYBRID = "hybrid", "Hybrid (cost, latency and reliability scores)"


class BreakerOverride(models.TextChoices):
    AUTO = "auto", "Automatic"
    OPEN = "open", "Forced open (no traffic)"
    CLOSED = "closed", "Forced closed (always used)"


def _positive(minimum: float) -> list[MinValueValidator]:
    return [MinValueValidator(minimum)]


FRACTION = [MinValueValidator(0.0), MaxValueValidator(1.0)]


class RoutingPolicy(models.Model):
    """How a model's deployments are tried: in which order and how persistently."""

    name = models.SlugField(max_length=64, unique=True)
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.FAILOVER)
    max_retries = models.PositiveSmallIntegerField(
        default=2, help_text="Further attempts after the first, across deployments and fallback models."
    )
    # --- Retries, failover, breakers and deadlines (issue 3) -----------------------------------
    same_deployment_retries = models.PositiveSmallIntegerField(
        default=1, help_text="Of those, how many may retry the same deployment (connect errors, resets, "
                             "502/503/504, 429 with a short Retry-After) before failing over.",
    )
    backoff_start_ms = models.PositiveIntegerField(default=100, help_text="First retry's backoff ceiling.")
    backoff_multiplier = models.FloatField(default=2.0, validators=_positive(1.0))
    backoff_cap_s = models.FloatField(default=10.0, validators=_positive(0.0))
    retry_after_cap_s = models.FloatField(
        default=2.0, validators=_positive(0.0),
        help_text="A 429 whose Retry-After is at most this is retried after it; a longer one fails over.",
    )
    retry_budget_ratio = models.FloatField(
        default=0.2, validators=_positive(0.0),
        help_text="Retries may add at most this fraction on top of first attempts (per process, 10 s window).",
    )
    request_deadline_s = models.FloatField(
        default=120.0, validators=_positive(0.1), help_text="Bound on a whole request: every attempt and backoff.",
    )
    stream_idle_timeout_s = models.FloatField(
        default=30.0, validators=_positive(0.1), help_text="A stream silent this long is ended with an error.",
    )
    stream_deadline_s = models.FloatField(
        default=600.0, validators=_positive(0.1), help_text="Bound on a whole stream, first byte to last.",
    )
    breaker_failure_threshold = models.PositiveSmallIntegerField(
        default=5, help_text="Consecutive failures that open a deployment's breaker (0: no breaker).",
    )
    breaker_reset_s = models.FloatField(
        default=30.0, validators=_positive(0.1), help_text="How long a breaker stays open before one trial call.",
    )
    breaker_success_threshold = models.PositiveSmallIntegerField(
        default=2, validators=_positive(1), help_text="Successful trial calls that close a half-open breaker.",
    )
    hybrid_cost_weight = models.FloatField(default=0.4, validators=FRACTION)
    hybrid_latency_weight = models.FloatField(default=0.4, validators=FRACTION)
    hybrid_reliability_weight = models.FloatField(default=0.2, validators=FRACTION)
    fallbacks = models.JSONField(
        default=dict, blank=True,
        help_text='Models tried after this one\'s deployments fail, by error code or "default", e.g. '
                  '{"context_length_exceeded": ["gpt-4o-128k"], "default": ["gpt-4o-mini"]}.',
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

    name = models.CharField(
        max_length=200, unique=True,
        help_text="The name clients put in requests; may be a pattern such as claude-* or * (an exact name wins).",
    )
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
    """One provider's copy of a model, with its prices in USD per million tokens.

    The prices here are those of its newest ``PriceVersion`` (the one with the latest effective
    date), kept so by ``apps.routing.price_versions.set_prices``, the only way to change them. The
    versions are the truth: a request is costed with the version in effect when it arrived.
    """

    model = models.ForeignKey(PublicModel, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(
        max_length=200, help_text="The model id the provider expects; * sends the client's model name."
    )
    # USD per million tokens; six places cover every published per-token price.
    input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    output_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    cached_input_usd_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, validators=NON_NEGATIVE, null=True, blank=True,
        help_text="Blank: cached input tokens cost the input price.",
    )
    # Prompt tokens written to the provider's prompt cache (Anthropic bills them above the input price).
    cache_write_usd_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, validators=NON_NEGATIVE, null=True, blank=True,
        help_text="Blank: prompt tokens written to the provider's cache cost the input price.",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="The output cap of requests that set none (max_tokens): admission reserves tokens and budget "
                  "for it. Blank: EDGE_DEFAULT_MAX_OUTPUT_TOKENS.",
    )
    priority = models.PositiveSmallIntegerField(default=1, help_text="Lower is tried first by failover.")
    weight = models.PositiveSmallIntegerField(default=1, help_text="Share of traffic for weighted routing.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    breaker_override = models.CharField(
        max_length=8, choices=BreakerOverride.choices, default=BreakerOverride.AUTO,
        help_text="Force the circuit breaker open or closed in every gateway process, or leave it automatic.",
    )

    class Meta:
        ordering = ["model__name", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "provider", "upstream_model"], name="unique_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} → {self.provider.name}/{self.upstream_model}"


class PriceVersion(models.Model):
    """A deployment's four prices from ``effective_from`` until its next version's; never edited.

    Written only by ``apps.routing.price_versions.set_prices``. Ledger rows name the version they
    were costed with (``LedgerEntry.price_version_id``) and copy its numbers.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="price_versions")
    effective_from = models.DateTimeField(help_text="Requests received from this moment on pay these prices.")
    input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    output_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=NON_NEGATIVE)
    cached_input_usd_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, validators=NON_NEGATIVE, null=True, blank=True,
        help_text="Blank: cached input tokens cost the input price.",
    )
    cache_write_usd_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, validators=NON_NEGATIVE, null=True, blank=True,
        help_text="Blank: prompt tokens written to the provider's cache cost the input price.",
    )
    note = models.TextField(blank=True, help_text="Why the prices changed (a provider's announcement, a contract).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "effective_from"], name="unique_price_version"),
        ]

    def __str__(self) -> str:
        return f"deployment {self.deployment_id} from {self.effective_from:%Y-%m-%d %H:%M:%S%z}"
