"""The only way to change a deployment's prices: a new version, effective from a moment; none is edited.

Admin's deployment pages, config as code (``edge_apply``) and billing's re-rating call ``set_prices``.
A request is costed with the version in effect when it arrived (the routing snapshot carries the
versions around now, apps.routing.table), so a version effective in the future switches at its moment
in every process without a database read per request. Requests recorded before a version was added
keep their cost; ``apps.billing.rerate`` corrects a past period.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.routing.models import Deployment, PriceVersion
from apps.routing.table import routing_tables

PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")


@transaction.atomic
def set_prices(
    *, deployment: Deployment, input_usd_per_mtok: Decimal, output_usd_per_mtok: Decimal,
    cached_input_usd_per_mtok: Decimal | None = None, cache_write_usd_per_mtok: Decimal | None = None,
    effective_from: datetime | None = None, note: str = "",
) -> PriceVersion:
    """Add a price version (``effective_from`` None: now) and return it.

    Raises ValidationError, storing nothing, for a negative or malformed price, or when the deployment
    already has a version from that very moment (history is kept: add one a moment later instead).
    The deployment's own price fields follow its newest version (what admin lists and edge_export writes).
    """
    version = PriceVersion(
        deployment=deployment, effective_from=effective_from or timezone.now(), note=note.strip(),
        input_usd_per_mtok=input_usd_per_mtok, output_usd_per_mtok=output_usd_per_mtok,
        cached_input_usd_per_mtok=cached_input_usd_per_mtok, cache_write_usd_per_mtok=cache_write_usd_per_mtok,
    )
    # One writer of a deployment's versions at a time, so "newest" below is not raced.
    Deployment.objects.select_for_update().filter(pk=deployment.pk).first()
    version.full_clean()  # includes the (deployment, effective_from) uniqueness, as a ValidationError
    version.save()
    newest = deployment.price_versions.order_by("-effective_from").first()
    if newest is not None and newest.pk == version.pk:
        mirrored = {name: getattr(version, name) for name in PRICE_FIELDS}
        Deployment.objects.filter(pk=deployment.pk).update(**mirrored, updated_at=timezone.now())
        for name, value in mirrored.items():
            setattr(deployment, name, value)
    transaction.on_commit(routing_tables.invalidate)  # this process at once; others within EDGE_CONFIG_TTL_S
    return version


def prices_differ(deployment: Deployment, **prices: Decimal | None) -> bool:
    """Whether ``prices`` differ from the deployment's newest (Decimal("0.6") equals Decimal("0.600000"))."""
    return any(getattr(deployment, name) != prices[name] for name in PRICE_FIELDS)


def ensure_price_version(*, deployment: Deployment, note: str) -> PriceVersion:
    """The deployment's first version from its own prices, effective from its creation, if it has none
    (a deployment just created by admin or edge_apply); its newest otherwise."""
    newest = deployment.price_versions.order_by("-effective_from").first()
    if newest is not None:
        return newest
    return set_prices(
        deployment=deployment, effective_from=deployment.created_at, note=note,
        **{name: getattr(deployment, name) for name in PRICE_FIELDS},
    )
