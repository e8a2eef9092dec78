"""`cost_of`: every prompt token at exactly one price, in Decimal to the ledger's ten places."""

from __future__ import annotations

from decimal import Decimal

from apps.billing.pricing import cost_of
from apps.providers.contracts import Usage
from apps.routing.prices import Prices

# Claude Sonnet's list prices: writes to the 5-minute cache cost 1.25 x input, reads 0.1 x.
SONNET = Prices(input_usd_per_mtok=Decimal("3"), output_usd_per_mtok=Decimal("15"),
                cached_input_usd_per_mtok=Decimal("0.30"), cache_write_usd_per_mtok=Decimal("3.75"))


def test_it_bills_each_kind_of_token_at_its_own_price():
    # 1000 prompt tokens: 200 read from the cache, 300 written to it, 500 plain; 40 completion tokens.
    usage = Usage(prompt_tokens=1000, completion_tokens=40, cached_tokens=200, source="provider",
                  cache_creation_tokens=300)

    assert cost_of(usage, SONNET) == Decimal("0.0032850000")  # (500*3 + 200*0.30 + 300*3.75 + 40*15) / 1e6


def test_it_bills_cache_writes_at_the_input_price_when_the_write_price_is_the_input_price():
    same = Prices(input_usd_per_mtok=Decimal("3"), output_usd_per_mtok=Decimal("15"),
                  cached_input_usd_per_mtok=Decimal("0.30"), cache_write_usd_per_mtok=Decimal("3"))
    usage = Usage(prompt_tokens=1000, completion_tokens=40, cached_tokens=200, source="provider",
                  cache_creation_tokens=300)

    assert cost_of(usage, same) == Decimal("0.0030600000")  # (800*3 + 200*0.30 + 40*15) / 1e6


def test_it_prices_a_single_written_token_exactly_among_a_million():
    usage = Usage(prompt_tokens=1_000_000, cache_creation_tokens=1, source="provider")

    assert cost_of(usage, SONNET) == Decimal("3.0000007500")  # (999999*3 + 1*3.75) / 1e6


def test_it_never_bills_a_token_twice_when_a_provider_reports_parts_larger_than_the_prompt():
    # Reads come out of the prompt first, then writes out of what is left: nothing is billed twice.
    too_many_writes = Usage(prompt_tokens=100, cached_tokens=60, cache_creation_tokens=70, source="provider")
    too_many_reads = Usage(prompt_tokens=100, cached_tokens=150, cache_creation_tokens=10, source="provider")

    assert cost_of(too_many_writes, SONNET) == Decimal("0.0001680000")  # (60*0.30 + 40*3.75) / 1e6
    assert cost_of(too_many_reads, SONNET) == Decimal("0.0000300000")  # 100*0.30 / 1e6
