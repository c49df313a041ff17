"""Request and response bodies of deals' HTTP API. Money travels as decimal strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from leadflow_deals.money import Amount, Currency, to_cents
from leadflow_deals.periods import Period, PeriodError
from leadflow_deals.stages import is_open
from leadflow_shared.events.schemas import StageId
from leadflow_shared.validation import LongText, Name

MoneyOut = Annotated[
    Decimal, PlainSerializer(lambda v: str(to_cents(v)), return_type=str, when_used="json")
]


class DealPatch(BaseModel):
    """Fields to change; those left out stay as they are, ``null`` clears where allowed."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount | None = None
    currency: Currency | None = None
    close_date: date | None = Field(default=None, description="expected close date")
    stage: StageId | None = Field(default=None, description="an open stage; close via /close")
    name: Name | None = None
    notes: LongText | None = None

    @field_validator("currency", "stage")
    @classmethod
    def _not_null(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("must not be null")
        return value

    @field_validator("stage")
    @classmethod
    def _open_stage(cls, value: StageId) -> StageId:
        if not is_open(value):
            outcome = "won" if value == "closed_won" else "lost"
            raise ValueError(
                f"a deal is {value} only by closing it: POST /v1/deals/{{deal_id}}/close "
                f'with {{"outcome": "{outcome}"}}'
            )
        return value


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost"]
    reason: LongText | None = None
    amount: Amount | None = Field(default=None, description="final amount; a win needs one")


class StageChangeOut(BaseModel):
    from_stage: StageId | None
    to_stage: StageId
    at: datetime
    by: str


class OwnerChangeOut(BaseModel):
    from_owner: str
    to_owner: str
    reason: str | None
    at: datetime
    by: str


class DealSummary(BaseModel):
    deal_id: str
    lead_id: str
    owner: str
    name: str | None
    company: str | None
    stage: StageId
    probability: int
    amount: MoneyOut | None
    currency: str
    close_date: date | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    erased: bool


class QualificationOut(BaseModel):
    """The SDR's qualification of the deal's lead (``lead.qualified``)."""

    framework: str
    fields: dict[str, Any]
    notes: str | None
    qualified_by: str
    qualified_at: datetime


class DealOut(DealSummary):
    close_reason: str | None
    notes: str | None
    qualification: QualificationOut | None = Field(
        default=None, description="the SDR's qualification (BANT or MEDDIC); null if none"
    )
    stage_history: list[StageChangeOut]
    owner_history: list[OwnerChangeOut]


class DealList(BaseModel):
    deals: list[DealSummary]
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Annotated[str, Field(max_length=20, examples=["2026-11", "2026-Q4"])]
    amount: Amount
    currency: Currency | None = Field(default=None, description="default: the service's")

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        try:
            return str(Period.parse(value))
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc


class QuotaOut(BaseModel):
    rep_id: str
    period: str
    amount: MoneyOut
    currency: str
    updated_at: datetime
    updated_by: str


class ForecastOut(BaseModel):
    """See :mod:`leadflow_deals.forecast` for each figure's definition. Money is a decimal
    string; ``attainment`` and ``win_rate`` are ratios (0.5 = 50 %), numbers like the
    cycle length."""

    period: str
    owner: str | None
    currency: str
    quota: MoneyOut | None
    pipeline: MoneyOut
    weighted_pipeline: MoneyOut
    commit: MoneyOut
    closed_won: MoneyOut
    attainment: float | None
    win_rate: float | None
    avg_sales_cycle_days: float | None
    deals_open: int
    deals_won: int
    deals_lost: int
    deals_open_undated: int
    deals_other_currency: int
