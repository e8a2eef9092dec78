from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

AT_LEAST_ONE = [MinValueValidator(1)]


def validate_timezone(name: str) -> None:
    if name not in _timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone name (such as Europe/Berlin or UTC).")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


class BudgetPeriod(models.TextChoices):
    DAY = "day"
    WEEK = "week", "week (ISO, from Monday)"
    MONTH = "month"
    TOTAL = "total", "total (never resets)"


class Limited(models.Model):
    """Rate limits and a budget, each optional (blank: unlimited). Tenants and keys both have them; a
    request must fit every one that applies, its key's and its tenant's."""

    rpm = models.PositiveIntegerField(
        null=True, blank=True, validators=AT_LEAST_ONE, verbose_name="requests per minute",
        help_text="Blank: unlimited.",
    )
    tpm = models.PositiveIntegerField(
        null=True, blank=True, validators=AT_LEAST_ONE, verbose_name="tokens per minute",
        help_text="Counted prompt tokens plus the output cap at admission, settled to the reported usage. Blank: "
                  "unlimited.",
    )
    max_parallel = models.PositiveIntegerField(
        null=True, blank=True, validators=AT_LEAST_ONE, verbose_name="requests in flight",
        help_text="Blank: unlimited.",
    )
    # USD to the ledger's 10 places, so a budget can be any sum of request costs.
    budget_usd = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True, validators=[MinValueValidator(0)],
        verbose_name="budget (USD)", help_text="Spend allowed per budget period. Blank: unlimited.",
    )
    # db_default too: an admin of the previous release, during a rolling deploy, inserts rows without it.
    budget_period = models.CharField(
        max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH, db_default=BudgetPeriod.MONTH,
        help_text="Calendar periods in the tenant's time zone.",
    )

    class Meta:
        abstract = True


# rpm, tpm, max_parallel, budget_usd, budget_period: what admin's forms and edge_key offer to set.
LIMITED_FIELDS = tuple(field.name for field in Limited._meta.fields)


class Tenant(Limited):
    """A customer of the gateway (a team, a product, a company): keys and costs belong to it."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True, help_text="Inactive tenants' keys stop working.")
    timezone = models.CharField(
        max_length=64, default="UTC", db_default="UTC", validators=[validate_timezone],
        help_text="IANA time zone of its budget periods (day, week, month), its keys' included.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Where its budget alerts go (apps.billing.alerts), besides EDGE_BUDGET_ALERT_WEBHOOK_URL.
    alert_emails = models.TextField(
        blank=True, db_default="", help_text="Addresses for budget alerts, comma-separated. Blank: no emails.",
    )
    alert_webhook_url = models.URLField(
        max_length=500, blank=True, db_default="",
        help_text="Budget alerts are POSTed here as JSON (signed if EDGE_BUDGET_ALERT_WEBHOOK_SECRET is set).",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, tenant__is_active=True).exclude(expires_at__lte=now)


class ApiKey(Limited):
    """A key the gateway issued. Only its SHA-256 is stored; the raw key is shown once, at creation."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=24, unique=True, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model names this key may use; empty means every model."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A scope, not a limit: off by default, so a key made for an application cannot read its tenant's
    # spend. db_default: a previous release's admin inserts keys without the column.
    reports_scope = models.BooleanField(
        default=False, db_default=False, verbose_name="reports scope",
        help_text="May read its tenant's usage and costs through /v1/organization/costs and /usage/*.",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant.slug})"

    @property
    def status(self) -> str:
        """revoked, expired, tenant inactive or active: what admin and `edge_key list` show."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active" if self.tenant.is_active else "tenant inactive"

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class LedgerEntry(models.Model):
    """One authenticated request (or a correction of one), as it happened. Never updated.

    Names of providers and models are copied, not referenced, so renaming or deleting
    configuration never rewrites history. Corrections are new rows of kind ``adjustment``.
    """

    class Kind(models.TextChoices):
        REQUEST = "request"
        ADJUSTMENT = "adjustment"

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        CANCELLED = "cancelled", "cancelled by client"

    class UsageSource(models.TextChoices):
        PROVIDER = "provider", "reported by provider"
        ESTIMATED = "estimated", "estimated by gateway"
        NONE = "none", "no usage"

    class CacheStatus(models.TextChoices):
        HIT_L1 = "hit-l1", "hit (this process)"
        HIT_L2 = "hit-l2", "hit (Redis)"
        MISS = "miss"
        BYPASS = "bypass", "bypassed"

    request_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REQUEST)
    adjusts = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="adjustments", to_field="request_id"
    )
    note = models.TextField(blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="ledger_entries")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries")
    endpoint = models.CharField(max_length=32, blank=True)
    public_model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)  # no FK: deployments may be deleted
    upstream_model = models.CharField(max_length=200, blank=True)
    stream = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    usage_source = models.CharField(max_length=16, choices=UsageSource.choices, default=UsageSource.NONE)
    input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    output_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    cached_input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    # USD to 10 places: a request can cost a millionth of a cent, and sums run over years.
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token (streams).")
    created_at = models.DateTimeField(db_index=True, help_text="When the gateway received the request.")
    # Columns added after the first release carry a database default too: a gateway of the previous
    # release, still running while the new one migrates, inserts rows without them.
    cache_status = models.CharField(
        max_length=8, choices=CacheStatus.choices, blank=True, db_default="",
        help_text="How the response cache took part.",
    )
    # What the cached answer cost when it was made: the spend a hit avoided (0 on other rows).
    cost_avoided_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0, db_default=0)
    attempts = models.JSONField(
        default=list, db_default=[], blank=True,
        help_text="The route taken: each attempt's deployment, outcome and duration.",
    )
    # Of prompt_tokens, those written to the provider's prompt cache (Anthropic), at their own price.
    cache_write_tokens = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Prompt tokens written to the provider's prompt cache."
    )
    cache_write_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    # Why the usage is the gateway's estimate rather than the provider's report, when the provider's
    # was not believed (out of bounds, negative, malformed); blank otherwise.
    usage_note = models.CharField(max_length=300, blank=True, db_default="")
    # The deployment's price version the row was costed with (routing's PriceVersion; no FK, like
    # deployment_id). The prices themselves are copied above, so the row stands on its own.
    price_version_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger"
        # (api_key, created_at): a key's budget is rebuilt from its period's rows.
        indexes = [models.Index(fields=["tenant", "created_at"]), models.Index(fields=["api_key", "created_at"])]

    def __str__(self) -> str:
        return self.request_id


class Rollup(models.Model):
    """The ledger summed per time bucket and dimension, so reports never read the ledger itself.

    Every ledger row is added to exactly one hourly and one daily row (UTC buckets), in the transaction
    that inserts it, so a committed ledger row is always in the rollups and the two sum alike. The
    dimensions are plain ids and copied names, like the ledger's; 0 stands for "none" in the id
    columns so that the unique key has no nulls. Costs are USD to 10 places, as in the ledger:
    ``cost_usd`` sums request rows, ``adjustment_usd`` adjustment rows; spend is their sum. The four
    ``*_cost_usd`` meters split each request row's ``cost_usd`` exactly (they sum to it per row).
    """

    bucket = models.DateTimeField(help_text="Start of the hour or day (UTC).")
    tenant_id = models.BigIntegerField()
    api_key_id = models.BigIntegerField(default=0)
    endpoint = models.CharField(max_length=32, default="")
    public_model = models.CharField(max_length=200, default="")
    provider = models.CharField(max_length=64, default="")
    deployment_id = models.BigIntegerField(default=0)
    price_version_id = models.BigIntegerField(default=0)

    requests_ok = models.BigIntegerField(default=0)
    requests_error = models.BigIntegerField(default=0)
    requests_cancelled = models.BigIntegerField(default=0)
    adjustments = models.BigIntegerField(default=0, help_text="Adjustment rows.")
    cache_hits = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    adjustment_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    input_cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cached_input_cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cache_write_cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    output_cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cost_avoided_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)
    ttft_ms_sum = models.BigIntegerField(default=0)
    ttft_count = models.BigIntegerField(default=0)

    DIMENSIONS = (
        "bucket", "tenant_id", "api_key_id", "endpoint", "public_model", "provider", "deployment_id",
        "price_version_id",
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} from {self.bucket:%Y-%m-%d %H:%M}"


class HourlyRollup(Rollup):
    class Meta:
        constraints = [models.UniqueConstraint(fields=Rollup.DIMENSIONS, name="hourly_rollup_dimensions")]
        indexes = [models.Index(fields=["tenant_id", "bucket"], name="hourly_rollup_tenant")]


class DailyRollup(Rollup):
    class Meta:
        constraints = [models.UniqueConstraint(fields=Rollup.DIMENSIONS, name="daily_rollup_dimensions")]
        indexes = [models.Index(fields=["tenant_id", "bucket"], name="daily_rollup_tenant")]


class BudgetAlert(models.Model):
    """A key's or tenant's spend passed a share of its budget in one budget period: recorded once.

    The row is the promise that the alert is sent once: the budget-alert task runs every minute and
    its insert of (subject, period, threshold) succeeds once. Delivery is tried on later runs until it
    succeeds or EDGE_BUDGET_ALERT_ATTEMPTS run out; ``superseded`` rows were passed in the same run as
    a higher threshold and are not sent (one message says 100 %, not three).
    """

    class SubjectKind(models.TextChoices):
        KEY = "key"
        TENANT = "tenant"

    subject_kind = models.CharField(max_length=8, choices=SubjectKind.choices)
    subject_id = models.BigIntegerField()
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="budget_alerts")
    period = models.CharField(max_length=16, help_text="The budget period: d2026-12-06, w2026-W49, m2026-12, total.")
    threshold_percent = models.PositiveSmallIntegerField()
    budget_usd = models.DecimalField(max_digits=20, decimal_places=10)
    spent_usd = models.DecimalField(max_digits=24, decimal_places=10, help_text="Spend when the threshold was seen.")
    crossed_at = models.DateTimeField()
    superseded = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["subject_kind", "subject_id", "period", "threshold_percent"], name="budget_alert_once",
        )]
        indexes = [models.Index(fields=["delivered_at", "superseded"], name="budget_alert_pending")]

    def __str__(self) -> str:
        return f"{self.subject_kind} {self.subject_id} {self.period} {self.threshold_percent}%"
