"""A row's rate limits and budget in a few words, as admin lists and `edge_key` show them:
"60 rpm · 100k tpm · 4 parallel · $100/month", or "unlimited"."""

from __future__ import annotations

from decimal import Decimal

from apps.billing.admission import BudgetStatus
from apps.billing.models import BudgetPeriod, Limited


def limits_text(row: Limited) -> str:
    parts = [f"{count_text(value)} {unit}" for value, unit in (
        (row.rpm, "rpm"), (row.tpm, "tpm"), (row.max_parallel, "parallel")) if value is not None]
    if (budget := budget_text(row)) is not None:
        parts.append(budget)
    return " · ".join(parts) or "unlimited"


def budget_text(row: Limited) -> str | None:
    """"$100/month", "$12.50/day", "$100 total"; None without a budget."""
    if row.budget_usd is None:
        return None
    amount = usd_text(row.budget_usd)
    return f"{amount} total" if row.budget_period == BudgetPeriod.TOTAL else f"{amount}/{row.budget_period}"


def budget_status_text(status: BudgetStatus) -> str:
    """A budget's current period as admission counts it: "2026-12-01 00:00 – 2027-01-01 00:00 (Europe/Berlin):
    spent $1.20 · reserved $0.05 · remaining $98.75"."""
    if status.start is None or status.end is None:
        period = "all time"
    else:
        period = f"{status.start:%Y-%m-%d %H:%M} – {status.end:%Y-%m-%d %H:%M} ({status.start.tzinfo})"
    remaining = usd_text(status.remaining_usd) if status.remaining_usd is not None else "unlimited"
    return (f"{period}: spent {usd_text(status.spent_usd)} · reserved {usd_text(status.reserved_usd)} · "
            f"remaining {remaining}")


def count_text(count: int) -> str:
    """Exact, and short when it can be: 100000 → "100k", 2000000 → "2M", 1500 → "1,500"."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size and count % size == 0:
            return f"{count // size:,}{suffix}"
    return f"{count:,}"


def usd_text(amount: Decimal) -> str:
    """Exact, without the column's padding: 100.0000000000 → "$100", 12.5 → "$12.50", -0.5 → "-$0.50"."""
    whole, _, fraction = f"{abs(amount):f}".partition(".")
    fraction = fraction.rstrip("0")
    cents = f".{fraction.ljust(2, '0')}" if fraction else ""
    return f"{'-' if amount < 0 else ''}${int(whole):,}{cents}"
