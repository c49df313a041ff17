"""``/v1/accounts``: the account list leads are matched to (admin CSV, won deals)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from leadflow_intake.accounts import (
    ACCOUNTS,
    AccountIn,
    account_index,
    matchable_domain,
    upsert_accounts,
)
from leadflow_intake.api.imports import CSV_TYPES
from leadflow_intake.csv_columns import account_field_of
from leadflow_intake.csv_stream import CsvReader, MultipartFile, csv_rows
from leadflow_intake.errors import PayloadTooLarge, UnsupportedMediaType
from leadflow_intake.normalise import registrable_domain
from leadflow_intake.schemas import (
    AccountImportResult,
    AccountList,
    AccountOut,
    ImportRejection,
)
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import NotFound, problem_responses
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Reader = Annotated[Principal, Depends(require_roles("manager", "sdr", "ae", "am"))]

# Rows written per transaction-statement group while an account file is read.
CHUNK_ROWS = 1000
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


def account_of(values: dict[str, str]) -> AccountIn | list[dict[str, str]]:
    """One CSV row as an account, or its errors (each naming its field)."""
    errors: list[dict[str, str]] = []
    name = values.get("name", "").strip()
    if not name:
        errors.append({"field": "name", "message": "an account needs a name"})
    elif len(name) > 200:
        errors.append({"field": "name", "message": "at most 200 characters"})
    domain: str | None = None
    given = values.get("domain", "").strip()
    if given:
        domain = registrable_domain(given) if len(given) <= 500 else None
        if domain is None:
            errors.append({"field": "domain", "message": f"{given[:100]!r} is not a domain"})
        elif matchable_domain(domain) is None:
            errors.append(
                {
                    "field": "domain",
                    "message": f"{domain} is a free-mail or disposable domain; "
                    "it cannot identify an account (leave it empty to match by name)",
                }
            )
    owner = values.get("owner", "").strip() or None
    if owner is not None and (len(owner) > 100 or "\x00" in owner):
        errors.append({"field": "owner", "message": "a rep id of at most 100 characters"})
    return errors or AccountIn(name=name, domain=domain, owner=owner)


@router.post(
    "/import",
    response_model=AccountImportResult,
    responses=problem_responses(413, 415, 422),
    openapi_extra=_BODY_DOC,
)
async def import_accounts(
    request: Request, runtime: Runtime, principal: Admin
) -> AccountImportResult:
    """CSV (``text/csv`` body, or the ``multipart/form-data`` part ``file``) with a
    header naming ``name``, ``domain`` and ``owner`` (a rep id) — case, spacing and
    synonyms such as ``Account Name``, ``Website``, ``Account Owner`` understood; ``,``,
    ``;`` or tab; UTF-8 with or without BOM. An account with a known domain (or, without
    a domain, a known name) is updated, else created. Domains are reduced to the
    registrable one (``https://www.acme.co.uk/`` → ``acme.co.uk``); free-mail and
    disposable domains are refused (the row is reported). Rows with errors are listed by
    number (the header is row 1) and do not stop the import."""
    settings = runtime.settings
    assert isinstance(settings, IntakeSettings)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.import_max_bytes:
        raise PayloadTooLarge(f"the file is larger than {settings.import_max_bytes} bytes")
    body: AsyncIterator[bytes] = request.stream()
    if media_type == "multipart/form-data":
        body = MultipartFile(request.headers["content-type"]).chunks(body)
    elif media_type not in CSV_TYPES:
        raise UnsupportedMediaType(
            "send the CSV as text/csv, or as the part named file of multipart/form-data"
        )
    reader = CsvReader(
        column_of=account_field_of,
        required="name",
        required_hint="a name column (name, Account Name, Company …)",
    )
    result = AccountImportResult(created=0, updated=0, rejected=[], rejected_count=0)
    async with runtime.db.sessions.begin() as session:
        async for rows in csv_rows(
            body, max_bytes=settings.import_max_bytes, batch_rows=CHUNK_ROWS, reader=reader
        ):
            good: list[AccountIn] = []
            for number, values in rows:
                parsed = account_of(values)
                if isinstance(parsed, AccountIn):
                    good.append(parsed)
                    continue
                result.rejected_count += 1
                if len(result.rejected) < settings.import_max_listed_rejections:
                    result.rejected.append(ImportRejection(row=number, errors=parsed))
            counts = await upsert_accounts(session, good, source="import", owner_role="import")
            result.created += counts.created
            result.updated += counts.updated
    account_index(session).stale = True  # committed now: the next capture reads them
    return result


def _out(row: Any) -> AccountOut:
    return AccountOut(
        account_id=row.id,
        name=row.name,
        domain=row.domain,
        owner=row.owner,
        owner_role=row.owner_role,
        source=row.source,
        deal_id=row.deal_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get("", response_model=AccountList, responses=problem_responses(422))
async def list_accounts(
    session: SessionDep,
    principal: Reader,
    domain: Annotated[str | None, Query(max_length=500)] = None,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AccountList:
    """Accounts by name; ``domain=`` (any URL or host: its registrable domain) finds the
    account of a domain, ``owner=`` a rep's accounts. Pages of ``limit``."""
    stmt = select(ACCOUNTS).order_by(ACCOUNTS.c.name_key, ACCOUNTS.c.id)
    if domain is not None:
        stmt = stmt.where(ACCOUNTS.c.domain == (registrable_domain(domain) or domain.lower()))
    if owner is not None:
        stmt = stmt.where(ACCOUNTS.c.owner == owner)
    rows = (await session.execute(stmt.offset(offset).limit(limit + 1))).all()
    return AccountList(
        accounts=[_out(row) for row in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get("/{account_id}", response_model=AccountOut, responses=problem_responses(404))
async def get_account(account_id: str, session: SessionDep, principal: Reader) -> AccountOut:
    row = (await session.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id))).first()
    if row is None:
        raise NotFound(f"no account {account_id}")
    return _out(row)
