"""Money inside admission: integer units of the ledger's quantum, 10^-10 USD.

Integers add exactly in Python and in Redis (INCRBY on 64-bit counters: up to $922,337,203 per
period), and a sum of them is the ledger's sum to the last digit. Lua compares them exactly too
(admit.lua splits each into two limbs, because a Lua number is a double and exact only to 2^53).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

PLACES = 10


def reserve_units(usd: Decimal) -> int:
    """A worst case, rounded up (a reservation never falls short of it); below zero counts as zero."""
    return max(0, int(usd.scaleb(PLACES).to_integral_value(ROUND_CEILING)))


def spend_units(usd: Decimal) -> int:
    """A real cost, rounded as Postgres rounds it into the ledger's numeric(20, 10)."""
    return max(0, int(usd.scaleb(PLACES).to_integral_value(ROUND_HALF_UP)))


def ledger_units(usd: Decimal) -> int:
    """A sum read from the ledger (already on the quantum; may be negative after adjustments)."""
    return int(usd.scaleb(PLACES).to_integral_value(ROUND_HALF_UP))


def to_usd(units: int) -> Decimal:
    return Decimal(units).scaleb(-PLACES)


def usd_text(amount: Decimal) -> str:
    """$25.00, $0.0312: cents at least, and every significant digit beyond them."""
    normal = amount.normalize()
    if normal.as_tuple().exponent >= -2:  # type: ignore[operator]  # finite here: never NaN or infinite
        return f"${amount.quantize(Decimal('0.01'))}"
    return f"${normal:f}"
