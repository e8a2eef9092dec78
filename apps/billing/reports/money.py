"""Money as a report shows it: to the cent on the page, with the exact value (10 places) beside it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.utils.html import format_html
from django.utils.safestring import SafeString

CENT = Decimal("0.01")
EXACT = Decimal("1E-10")


def exact(amount: Decimal) -> str:
    """Every stored digit, never in exponent form ("0.0000000000", not "0E-10")."""
    return format(amount.quantize(EXACT), "f")


def cents(amount: Decimal) -> str:
    rounded = amount.quantize(CENT, ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def money_html(amount: Decimal) -> SafeString:
    """Cents to read, the exact amount in the tooltip and in ``data-exact`` for tests and scripts."""
    return format_html('<span class="money" title="{} USD" data-exact="{}">{}</span>', exact(amount), exact(amount),
                       cents(amount))
