"""``POST /v1/leads/import`` (CSV from events and trade shows) and its status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from leadflow_intake.csv_stream import MultipartFile
from leadflow_intake.errors import PayloadTooLarge, UnsupportedMediaType
from leadflow_intake.import_worker import import_worker
from leadflow_intake.imports import import_status, receive_import
from leadflow_intake.schemas import ImportStatus
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import NotFound, problem_responses
from leadflow_shared.service import Runtime

router = APIRouter(prefix="/v1/leads", tags=["leads"])
Importer = Annotated[Principal, Depends(require_roles("integration", "manager"))]

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/octet-stream"})
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/import",
    response_model=ImportStatus,
    responses={
        202: {"model": ImportStatus, "description": "large file: importing in the background"},
        **problem_responses(413, 415, 422),
    },
    openapi_extra=_BODY_DOC,
)
async def import_csv(request: Request, runtime: Runtime, principal: Importer) -> JSONResponse:
    """CSV (``text/csv`` body, or a ``multipart/form-data`` part named ``file``): a header
    row naming lead fields (case, spacing and common synonyms such as ``Email Address``
    are understood; ``,`` or ``;``), then one lead per row.

    The file is streamed into a staging table, never held in memory. Small files (up to
    ``import_inline_rows``) are captured before answering: 200 with the result. Larger
    ones, or any sent with ``Prefer: respond-async``, answer 202 with ``import_id``; poll
    ``GET /v1/leads/imports/{import_id}``. Invalid rows are reported by row number (the
    header is row 1) with each bad field and do not stop the import.
    """
    settings = runtime.settings
    assert isinstance(settings, IntakeSettings)
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.import_max_bytes:
        raise PayloadTooLarge(f"the file is larger than {settings.import_max_bytes} bytes")
    body: AsyncIterator[bytes] = request.stream()
    multipart: MultipartFile | None = None
    if media_type == "multipart/form-data":
        multipart = MultipartFile(content_type)
        body = multipart.chunks(body)
    elif media_type not in CSV_TYPES:
        raise UnsupportedMediaType(
            "send the CSV as text/csv, or as the part named file of multipart/form-data"
        )
    worker = import_worker(runtime)
    received = await receive_import(
        runtime.db,
        settings,
        body,
        worker=worker.id,
        created_by=principal.sub,
        filename=lambda: multipart.filename if multipart is not None else None,
    )
    wants_async = "respond-async" in request.headers.get("prefer", "").lower()
    if received.rows <= settings.import_inline_rows and not wants_async:
        await worker.process(received.import_id)
    else:
        worker.submit(received.import_id)
    status = await import_status(runtime.db, received.import_id, settings)
    done = status.status in ("done", "failed")
    return JSONResponse(
        status.model_dump(mode="json"),
        status_code=200 if done else 202,
        headers=None if done else {"Location": f"/v1/leads/imports/{status.import_id}"},
    )


@router.get("/imports/{import_id}", response_model=ImportStatus, responses=problem_responses(404))
async def get_import(import_id: str, runtime: Runtime, principal: Importer) -> ImportStatus:
    """``{status, accepted, merged, rejected: [{row, errors}], rejected_count, …}``; an
    integration sees its own imports, managers and admins every import."""
    settings = runtime.settings
    assert isinstance(settings, IntakeSettings)
    status = await import_status(runtime.db, import_id, settings)
    if not principal.is_manager and status.created_by != principal.sub:
        raise NotFound(f"no import {import_id}")
    return status
