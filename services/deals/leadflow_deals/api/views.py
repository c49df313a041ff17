"""Deals as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from leadflow_deals.models import Deal, LeadQualification, OwnerChange, StageChange
from leadflow_deals.schemas import (
    DealOut,
    DealSummary,
    OwnerChangeOut,
    QualificationOut,
    StageChangeOut,
)
from leadflow_deals.stages import PROBABILITY
from leadflow_shared.events.schemas import StageId


def deal_summary(deal: Deal) -> DealSummary:
    stage = cast(StageId, deal.stage)
    return DealSummary(
        deal_id=deal.id,
        lead_id=deal.lead_id,
        owner=deal.owner,
        name=deal.name,
        company=deal.company,
        stage=stage,
        probability=PROBABILITY[stage],
        amount=deal.amount,
        currency=deal.currency,
        close_date=deal.close_date,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
        closed_at=deal.closed_at,
        erased=deal.erased_at is not None,
    )


def deal_detail(
    deal: Deal,
    stages: Sequence[StageChange],
    owners: Sequence[OwnerChange],
    qualification: LeadQualification | None = None,
) -> DealOut:
    return DealOut(
        **deal_summary(deal).model_dump(),
        close_reason=deal.close_reason,
        notes=deal.notes,
        qualification=None
        if qualification is None
        else QualificationOut(
            framework=qualification.framework,
            fields=qualification.fields,
            notes=qualification.notes,
            qualified_by=qualification.qualified_by,
            qualified_at=qualification.qualified_at,
        ),
        stage_history=[
            StageChangeOut(
                from_stage=cast(StageId | None, s.from_stage),
                to_stage=cast(StageId, s.to_stage),
                at=s.at,
                by=s.by,
            )
            for s in stages
        ],
        owner_history=[
            OwnerChangeOut(
                from_owner=o.from_owner, to_owner=o.to_owner, reason=o.reason, at=o.at, by=o.by
            )
            for o in owners
        ],
    )
