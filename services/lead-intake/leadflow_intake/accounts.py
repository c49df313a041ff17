"""Accounts and lead-to-account matching.

Accounts come from an admin CSV (``name, domain, owner``) and from won deals. A lead is
matched at capture, first by its registrable domain (never a free-mail or disposable
one), then by fuzzy company name: legal suffixes (Inc, GmbH, Ltd, LLC, SA, AG, BV …),
case, accents and punctuation are ignored, and the best candidate scoring at least
:data:`NAME_THRESHOLD` (rapidfuzz ``token_sort_ratio``, 0-100) wins.

Matching runs in memory: each process keeps an :class:`AccountIndex` (accounts by
domain, and by a blocking key — the first word of the folded name — so a company name
is compared only with the accounts sharing its first word, a few hundred at most even at
100,000 accounts). The index loads on first use and refreshes the accounts changed since
its last look (with an overlap window) at most every :data:`REFRESH_S` seconds, and at
once after this process changed accounts. An account imported through another replica is
therefore matched within a few seconds.
"""

from __future__ import annotations

import re
import time
import unicodedata
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, Engine, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.models import Account
from leadflow_intake.normalise import DISPOSABLE, FREE_MAIL, registrable_domain
from leadflow_shared.ids import new_id, utcnow

ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]

# A company name matches an account when rapidfuzz's token_sort_ratio of the two folded
# names (suffixes removed) is at least this (0-100). 90 tolerates about one typo in
# twenty letters ("Initech Solution" ~ "Initech Solutions", 97) and word order, not a
# different word ("Globex" vs "Globex Systems", 60): a wrong owner is worse than none.
NAME_THRESHOLD = 90.0
REFRESH_S = 2.0
# Rows changed this long before the last refresh's newest are read again (a transaction
# that committed late with an earlier timestamp is still seen).
OVERLAP = timedelta(seconds=60)

# Legal forms and filler words ignored at the end of a company name (after folding).
LEGAL_SUFFIXES: frozenset[str] = frozenset(
    """
    inc incorporated corp corporation co company cos ltd limited llc llp lp plc pllc
    gmbh mbh ag kg kgaa ohg ug ev eg se sa sas sarl sasu sca spa srl sl slu bv nv vof
    oy oyj ab asa as aps sro kk pty pte pvt bhd sdn
    group holding holdings the and
    """.split()
)
_NON_WORD = re.compile(r"[^a-z0-9]+")
# "G.m.b.H." or "S.A." → "gmbh", "sa": dots and apostrophes join, other punctuation splits.
_JOINERS = re.compile("[.'`\u2019]")


def company_key(name: str) -> str:
    """``"ACME, Inc."`` → ``"acme"``; ``"Müller & Söhne GmbH & Co. KG"`` →
    ``"muller and sohne"``: accents, case and punctuation folded, legal suffixes (and a
    leading "the") dropped. A name made only of such words keeps them."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = _NON_WORD.sub(" ", _JOINERS.sub("", plain.replace("&", " and "))).split()
    kept = list(words)
    while kept and kept[-1] in LEGAL_SUFFIXES:
        kept.pop()
    while kept and kept[0] in ("the",):
        kept.pop(0)
    return " ".join(kept or words)


def _sorted_words(key: str) -> str:
    """The words in order: ``ratio`` of two such strings is ``token_sort_ratio`` of the
    names, with the sorting done once per account instead of once per comparison."""
    return " ".join(sorted(key.split()))


def block_of(key: str) -> str:
    """The blocking key of a folded name: its first word (``""`` for an empty name)."""
    return key.split(" ", 1)[0]


def matchable_domain(domain: str | None) -> str | None:
    """The registrable domain to match on, or None for free-mail and disposable ones."""
    if not domain:
        return None
    registrable = registrable_domain(domain) or domain.strip().lower()
    if registrable in FREE_MAIL or registrable in DISPOSABLE or domain in FREE_MAIL:
        return None
    return registrable


@dataclass(slots=True)
class _Entry:
    id: str
    name: str
    key: str
    domain: str | None
    owner: str | None


@dataclass
class AccountIndex:
    """Accounts in memory by domain and by blocking key; see the module docstring."""

    by_id: dict[str, _Entry] = field(default_factory=dict)
    by_domain: dict[str, str] = field(default_factory=dict)
    # block → (folded names with sorted words, account ids), parallel lists for rapidfuzz.
    blocks: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    watermark: datetime | None = None
    checked_at: float = float("-inf")
    stale: bool = True

    def __len__(self) -> int:
        return len(self.by_id)

    def put(self, row: Any) -> None:
        """Add or replace one account (a row with id, name, name_key, domain, owner)."""
        old = self.by_id.get(row.id)
        if old is not None:
            if old.domain and self.by_domain.get(old.domain) == old.id:
                del self.by_domain[old.domain]
            names, ids = self.blocks.get(block_of(old.key), ([], []))
            if old.id in ids:
                at = ids.index(old.id)
                del names[at], ids[at]
        entry = _Entry(row.id, row.name, row.name_key, row.domain, row.owner)
        self.by_id[entry.id] = entry
        if entry.domain:
            self.by_domain[entry.domain] = entry.id
        if entry.key:
            names, ids = self.blocks.setdefault(block_of(entry.key), ([], []))
            names.append(_sorted_words(entry.key))
            ids.append(entry.id)

    def match(self, domain: str | None, company: str | None) -> dict[str, Any] | None:
        """The account a lead belongs to (``lead.captured``'s ``account``), or None."""
        wanted = matchable_domain(domain)
        if wanted is not None:
            account_id = self.by_domain.get(wanted)
            if account_id is not None:
                return self._as_match(self.by_id[account_id], "domain", 1.0)
        if not company:
            return None
        key = company_key(company)
        if not key:
            return None
        block = self.blocks.get(block_of(key))
        if not block:
            return None
        names, ids = block
        best = process.extractOne(
            _sorted_words(key),
            names,
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=NAME_THRESHOLD,
        )
        if best is None:
            return None
        _, score, at = best
        return self._as_match(self.by_id[ids[at]], "name", round(score / 100, 3))

    @staticmethod
    def _as_match(entry: _Entry, how: str, confidence: float) -> dict[str, Any]:
        return {
            "account_id": entry.id,
            "name": entry.name,
            "domain": entry.domain,
            "owner": entry.owner,
            "match": how,
            "confidence": confidence,
        }

    async def refresh(self, session: AsyncSession, *, force: bool = False) -> None:
        """Read the accounts changed since the last look (all of them the first time)."""
        now = time.monotonic()
        if not (force or self.stale or now - self.checked_at >= REFRESH_S):
            return
        self.stale = False
        self.checked_at = now
        stmt = select(
            ACCOUNTS.c.id,
            ACCOUNTS.c.name,
            ACCOUNTS.c.name_key,
            ACCOUNTS.c.domain,
            ACCOUNTS.c.owner,
            ACCOUNTS.c.updated_at,
        )
        if self.watermark is not None:
            stmt = stmt.where(ACCOUNTS.c.updated_at >= self.watermark - OVERLAP)
        for row in (await session.execute(stmt)).all():
            self.put(row)
            if self.watermark is None or row.updated_at > self.watermark:
                self.watermark = row.updated_at


_INDEXES: weakref.WeakKeyDictionary[Engine, AccountIndex] = weakref.WeakKeyDictionary()


def account_index(session: AsyncSession) -> AccountIndex:
    """This process's index for the session's database."""
    bind = session.bind
    assert bind is not None
    engine: Engine = bind.sync_engine
    index = _INDEXES.get(engine)
    if index is None:
        index = _INDEXES[engine] = AccountIndex()
    return index


async def match_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Set ``account`` on each lead row (a new match replaces the old one; no match keeps
    what the lead had)."""
    index = account_index(session)
    await index.refresh(session)
    if not index.by_id:
        return
    for row in rows:
        found = index.match(row.get("domain"), row.get("company"))
        if found is not None:
            row["account"] = found


# --- writing accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class AccountIn:
    """One account to create or update: by domain when it has one, else by folded name."""

    name: str
    domain: str | None
    owner: str | None


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    ids: list[str] = field(default_factory=list)


async def upsert_accounts(
    session: AsyncSession,
    accounts: list[AccountIn],
    *,
    source: str,
    owner_role: str | None = None,
    deal_id: str | None = None,
    keep_owner_roles: frozenset[str] = frozenset(),
) -> UpsertCounts:
    """Create or update accounts (a few statements whatever the number). The same domain
    (or, without one, the same folded name) is the same account; the last one given wins.
    An account whose owner came from one of ``keep_owner_roles`` keeps its owner."""
    latest: dict[tuple[str, str], AccountIn] = {}
    for account in accounts:
        key = company_key(account.name)
        ident = ("domain", account.domain) if account.domain else ("name", key)
        latest[ident] = account
    if not latest:
        return UpsertCounts()
    domains = [v for k, v in latest if k == "domain"]
    # A name-only account (a won deal from a free-mail lead) gains the domain later given.
    keys = {company_key(account.name) for account in latest.values()}
    conditions: list[ColumnElement[bool]] = [
        ACCOUNTS.c.domain.is_(None) & ACCOUNTS.c.name_key.in_(keys)
    ]
    if domains:
        conditions.append(ACCOUNTS.c.domain.in_(domains))
    found = await session.execute(
        select(ACCOUNTS.c.id, ACCOUNTS.c.domain, ACCOUNTS.c.name_key, ACCOUNTS.c.owner_role)
        .where(or_(*conditions))
        .order_by(ACCOUNTS.c.created_at)
    )
    existing: dict[tuple[str, str], Any] = {}
    for row in found.all():
        ident = ("domain", row.domain) if row.domain else ("name", row.name_key)
        existing.setdefault(ident, row)
    now = utcnow()
    counts = UpsertCounts()
    inserts: list[dict[str, Any]] = []
    for ident, account in latest.items():
        key = company_key(account.name)
        values: dict[str, Any] = {
            "name": account.name,
            "name_key": key,
            "updated_at": now,
        }
        found_row = existing.get(ident)
        if found_row is None and ident[0] == "domain":
            found_row = existing.pop(("name", key), None)
            if found_row is not None:
                values["domain"] = account.domain
        if found_row is None:
            inserts.append(
                {
                    **values,
                    "id": new_id(),
                    "domain": account.domain,
                    "owner": account.owner,
                    "owner_role": owner_role if account.owner else None,
                    "source": source,
                    "deal_id": deal_id,
                    "created_at": now,
                }
            )
            counts.created += 1
            counts.ids.append(inserts[-1]["id"])
            continue
        if account.owner and found_row.owner_role not in keep_owner_roles:
            values.update(owner=account.owner, owner_role=owner_role)
        if deal_id is not None:
            values["deal_id"] = deal_id
        await session.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == found_row.id).values(values))
        counts.updated += 1
        counts.ids.append(found_row.id)
    if inserts:
        await session.execute(ACCOUNTS.insert(), inserts)
    account_index(session).stale = True
    return counts


async def set_owner_of_deal_accounts(
    session: AsyncSession, deal_id: str, owner: str, owner_role: str
) -> int:
    """The account a won deal made or updated gets ``owner`` (its AM); how many did."""
    result = await session.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.deal_id == deal_id)
        .values(owner=owner, owner_role=owner_role, updated_at=utcnow())
    )
    account_index(session).stale = True
    return int(result.rowcount)  # type: ignore[attr-defined]
