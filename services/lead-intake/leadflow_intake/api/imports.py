"""``POST /v1/leads/import``: CSV from events and trade shows."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, UploadFile
from pydantic import ValidationError

from leadflow_intake.capture import capture_lead
from leadflow_intake.flat import lead_from_flat
from leadflow_intake.schemas import ImportRejection, ImportResult
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/leads", tags=["leads"])
Importer = Annotated[Principal, Depends(require_roles("integration", "manager"))]


@router.post("/import", response_model=ImportResult)
async def import_csv(
    file: UploadFile, session: SessionDep, runtime: Runtime, principal: Importer
) -> ImportResult:
    """A header row naming lead fields (``utm_source``, ``consent_marketing`` …), then leads.

    Valid rows are captured (or merged); invalid rows are reported by row number (the
    header is row 1) with each bad field, and do not stop the import.
    """
    settings = runtime.settings
    assert isinstance(settings, IntakeSettings)
    try:
        text = (await file.read()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput.field("file", "must be UTF-8 encoded CSV") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in reader.fieldnames:
        raise InvalidInput.field("file", "the header row must name an email column")
    accepted = merged = 0
    rejected: list[ImportRejection] = []
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InvalidInput.field("file", f"not valid CSV: {exc}") from exc
    if len(rows) > settings.import_max_rows:
        raise InvalidInput.field("file", f"at most {settings.import_max_rows} rows per import")
    for number, row in enumerate(rows, start=2):
        values = {k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
        try:
            lead = lead_from_flat(values)
        except ValidationError as exc:
            rejected.append(
                ImportRejection(
                    row=number,
                    errors=[
                        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                        for e in exc.errors()
                    ],
                )
            )
            continue
        result = await capture_lead(session, runtime.outbox, lead)
        if result.status == "accepted":
            accepted += 1
        else:
            merged += 1
    return ImportResult(accepted=accepted, merged=merged, rejected=rejected)
