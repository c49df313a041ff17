"""Money on the wire: amounts with at most two decimals, ISO 4217 currency codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(10**12)

# Active ISO 4217 codes a sales team is likely to quote in (not the metals or funds codes).
CURRENCIES: frozenset[str] = frozenset(
    """
    AED ARS AUD BGN BHD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK
    JPY KES KRW KWD MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD SAR SEK SGD THB TRY
    TWD UAH USD VND ZAR
    """.split()
)


def to_cents(value: Decimal) -> Decimal:
    """``value`` with exactly two decimals (``-0`` becomes ``0``), as stored and sent."""
    return value.quantize(CENT) + Decimal(0)


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code such as USD, EUR or GBP")
    return code


Amount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, max_digits=15, decimal_places=2, allow_inf_nan=False),
    AfterValidator(to_cents),
]
Currency = Annotated[str, Field(max_length=3), AfterValidator(_currency_code)]
