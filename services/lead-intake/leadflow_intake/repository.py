"""Every query lead-intake makes.

The capture path (live leads and imports) uses Core statements on plain row dicts: one
multi-row statement per step whatever the number of leads, no ORM identity map to fill.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.models import (
    Engagement,
    Form,
    IdempotencyRecord,
    Lead,
    LeadImport,
    LeadOwner,
    RejectedImportRow,
    StagedImportRow,
)

LEADS: Table = Lead.__table__  # type: ignore[assignment]
OWNERS: Table = LeadOwner.__table__  # type: ignore[assignment]
IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
IMPORTS: Table = LeadImport.__table__  # type: ignore[assignment]
STAGED: Table = StagedImportRow.__table__  # type: ignore[assignment]
REJECTED: Table = RejectedImportRow.__table__  # type: ignore[assignment]
# The columns a capture reads and writes (everything but the erasure marker).
PROFILE_COLUMNS = [c for c in LEADS.c if c.name != "erased_at"]


def upsert_insert(session: AsyncSession, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support on both backends (PostgreSQL, SQLite)."""
    bind = session.bind
    name = bind.dialect.name if bind is not None else "sqlite"
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    return dialect_insert(table)


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, lead_id: str) -> Lead | None:
        return await self.session.get(Lead, lead_id)

    async def by_email(self, email_normalized: str) -> Lead | None:
        return await self.session.scalar(
            select(Lead).where(Lead.email_normalized == email_normalized)
        )

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the rows whose email is not known yet (one statement); their ids."""
        if not rows:
            return set()
        stmt: Insert = (
            upsert_insert(self.session, LEADS)
            .on_conflict_do_nothing(index_elements=["email_normalized"])
            .returning(LEADS.c.id)
        )
        result = await self.session.execute(stmt, list(rows))
        return set(result.scalars())

    async def rows_by_email(self, emails_normalized: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Known leads as row dicts, keyed by normalised email (one statement)."""
        keys = list(emails_normalized)
        if not keys:
            return {}
        result = await self.session.execute(
            select(*PROFILE_COLUMNS).where(LEADS.c.email_normalized.in_(keys))
        )
        return {row["email_normalized"]: dict(row) for row in result.mappings()}

    async def update_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Write merged profiles back (one executemany)."""
        params = [{**row, "b_id": row["id"]} for row in rows]
        if not params:
            return
        columns = [c.name for c in PROFILE_COLUMNS if c.name not in ("id", "created_at")]
        stmt = (
            update(LEADS)
            .where(LEADS.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in columns})
        )
        await self.session.execute(stmt, params)

    async def owners(self, lead_id: str) -> dict[str, str | None]:
        rows = await self.session.execute(
            select(OWNERS.c.role, OWNERS.c.owner).where(OWNERS.c.lead_id == lead_id)
        )
        owners: dict[str, str | None] = {"sdr": None, "ae": None, "am": None}
        owners.update({row.role: row.owner for row in rows})
        return owners

    async def set_owners(self, owners: Iterable[tuple[str, str, str]]) -> None:
        """Upsert ``(lead_id, role, owner)`` in one statement; the last one per key wins."""
        latest = {(lead_id, role): owner for lead_id, role, owner in owners}
        if not latest:
            return
        stmt = upsert_insert(self.session, OWNERS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["lead_id", "role"], set_={"owner": stmt.excluded.owner}
        )
        await self.session.execute(
            stmt,
            [{"lead_id": k[0], "role": k[1], "owner": owner} for k, owner in latest.items()],
        )

    async def erase_engagements(self, lead_id: str) -> None:
        await self.session.execute(delete(Engagement).where(Engagement.lead_id == lead_id))

    async def idempotent_result(self, client: str, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, (client, key))

    async def claim_keys(self, records: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert idempotency records (``client, key, body_hash``, no answer yet) before
        capturing; the ``(client, key)`` pairs this transaction now holds. A key held by a
        concurrent transaction blocks here until that one commits (PostgreSQL), then
        counts as taken: its stored answer is the one to give. Keys are inserted in order,
        so two transactions never wait on each other's keys (no deadlock)."""
        if not records:
            return set()
        stmt = (
            upsert_insert(self.session, IDEMPOTENCY)
            .on_conflict_do_nothing()
            .returning(IDEMPOTENCY.c.client, IDEMPOTENCY.c.key)
        )
        # One multi-row VALUES statement, rows in key order.
        ordered = sorted(records, key=lambda r: (r["client"], r["key"]))
        result = await self.session.execute(stmt.values(ordered))
        return {(client, key) for client, key in result.all()}

    async def idempotency_records(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], IdempotencyRecord]:
        wanted = list(keys)
        if not wanted:
            return {}
        rows = await self.session.scalars(
            select(IdempotencyRecord).where(
                tuple_(IdempotencyRecord.client, IdempotencyRecord.key).in_(wanted)
            )
        )
        return {(r.client, r.key): r for r in rows}

    async def settle_keys(self, answers: Sequence[dict[str, Any]]) -> None:
        """Write the answers (``client, key, lead_id, status``) of keys this transaction
        claimed."""
        if answers:
            await self.session.execute(
                update(IDEMPOTENCY)
                .where(
                    IDEMPOTENCY.c.client == bindparam("b_client"),
                    IDEMPOTENCY.c.key == bindparam("b_key"),
                )
                .values(lead_id=bindparam("lead_id"), status=bindparam("status")),
                [
                    {
                        "b_client": a["client"],
                        "b_key": a["key"],
                        "lead_id": a["lead_id"],
                        "status": a["status"],
                    }
                    for a in answers
                ],
            )


class FormRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, form: Form) -> None:
        self.session.add(form)

    async def get(self, form_key: str) -> Form | None:
        return await self.session.get(Form, form_key)


class ImportRepository:
    """CSV imports: the import row (status, counts, lease), staged rows, rejections."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, values: dict[str, Any]) -> None:
        await self.session.execute(IMPORTS.insert().values(values))

    async def get(self, import_id: str) -> LeadImport | None:
        return await self.session.get(LeadImport, import_id)

    async def stage(
        self, import_id: str, rows: Sequence[tuple[int, dict[str, str]]], *, lease: datetime
    ) -> None:
        await self.session.execute(
            STAGED.insert(),
            [{"import_id": import_id, "row": n, "values": values} for n, values in rows],
        )
        await self.session.execute(
            update(IMPORTS)
            .where(IMPORTS.c.id == import_id)
            .values(rows=IMPORTS.c.rows + len(rows), claimed_until=lease)
        )

    async def update(self, import_id: str, **values: Any) -> None:
        await self.session.execute(update(IMPORTS).where(IMPORTS.c.id == import_id).values(values))

    async def claim(
        self, import_id: str, worker: str, now: datetime, lease: datetime
    ) -> int | None:
        """Take or renew the lease of a processing import (the row stays locked until
        commit on PostgreSQL, so two processes never capture the same chunk). Returns the
        import's rejected count, or None when it is not ours to process."""
        result = await self.session.execute(
            update(IMPORTS)
            .where(
                IMPORTS.c.id == import_id,
                IMPORTS.c.status == "processing",
                or_(IMPORTS.c.claimed_by == worker, IMPORTS.c.claimed_until < now),
            )
            .values(claimed_by=worker, claimed_until=lease)
            .returning(IMPORTS.c.rejected_count)
        )
        rejected = result.scalar_one_or_none()
        return None if rejected is None else int(rejected)

    async def next_rows(self, import_id: str, limit: int) -> list[tuple[int, dict[str, str]]]:
        result = await self.session.execute(
            select(STAGED.c.row, STAGED.c["values"])
            .where(STAGED.c.import_id == import_id)
            .order_by(STAGED.c.row)
            .limit(limit)
        )
        return [(row, values) for row, values in result.all()]

    async def consume(self, import_id: str, through_row: int) -> None:
        """Drop the staged rows up to ``through_row`` (captured in this transaction)."""
        await self.session.execute(
            delete(STAGED).where(STAGED.c.import_id == import_id, STAGED.c.row <= through_row)
        )

    async def discard(self, import_id: str) -> None:
        await self.session.execute(delete(STAGED).where(STAGED.c.import_id == import_id))

    async def count(
        self, import_id: str, *, processed: int, accepted: int, merged: int, rejected: int
    ) -> None:
        await self.session.execute(
            update(IMPORTS)
            .where(IMPORTS.c.id == import_id)
            .values(
                processed=IMPORTS.c.processed + processed,
                accepted=IMPORTS.c.accepted + accepted,
                merged=IMPORTS.c.merged + merged,
                rejected_count=IMPORTS.c.rejected_count + rejected,
            )
        )

    async def reject(self, import_id: str, rejections: Sequence[tuple[int, Any]]) -> None:
        if rejections:
            await self.session.execute(
                REJECTED.insert(),
                [{"import_id": import_id, "row": n, "errors": e} for n, e in rejections],
            )

    async def rejections(self, import_id: str, limit: int) -> list[tuple[int, Any]]:
        result = await self.session.execute(
            select(REJECTED.c.row, REJECTED.c.errors)
            .where(REJECTED.c.import_id == import_id)
            .order_by(REJECTED.c.row)
            .limit(limit)
        )
        return [(row, errors) for row, errors in result.all()]

    async def lapsed(self, now: datetime) -> list[tuple[str, str]]:
        """``(id, status)`` of unfinished imports whose worker went silent."""
        result = await self.session.execute(
            select(IMPORTS.c.id, IMPORTS.c.status).where(
                IMPORTS.c.status.in_(("receiving", "processing")), IMPORTS.c.claimed_until < now
            )
        )
        return [(i, status) for i, status in result.all()]

    async def fail_if_lapsed(self, import_id: str, now: datetime, error: str) -> bool:
        result = await self.session.execute(
            update(IMPORTS)
            .where(
                IMPORTS.c.id == import_id,
                IMPORTS.c.status == "receiving",
                IMPORTS.c.claimed_until < now,
            )
            .values(status="failed", error=error, finished_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
