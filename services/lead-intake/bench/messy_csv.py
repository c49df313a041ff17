"""A messy 1,000-row CSV, imported: how many leads are captured, normalised, merged as
duplicates and matched to accounts.

The file has the faults marketing's lists have: a BOM and ``;`` as delimiter, CRM-style
headers, country names in any case (and a few nobody knows), national phone formats,
mixed-case emails, plus-addressed and gmail-dotted duplicates of earlier rows, company
names with and without legal suffixes, blank and invalid emails. An account list (the
companies, half with domains) is imported first. Runs lead-intake in-process on SQLite.

    .venv/bin/python services/lead-intake/bench/messy_csv.py [--rows 1000] [--write F]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from leadflow_intake.main import create_app
from leadflow_intake.models import Lead
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.testing import auth_header, running_service

COMPANIES = [
    ("Acme Corp", "acme.com"),
    ("Globex GmbH", "globex.de"),
    ("Initech Ltd", "initech.co.uk"),
    ("Umbrella S.A.", "umbrella.fr"),
    ("Stark Industries Inc", None),
    ("Wayne Enterprises LLC", None),
    ("Hooli AG", "hooli.ch"),
    ("Vandelay Industries B.V.", None),
    ("Soylent Corporation", "soylent.com"),
    ("Cyberdyne Systems", None),
]
VARIANTS = ["{}", "{} Inc.", "{} GmbH", "{}, Ltd", "{} LLC", "{} SA", "{} AG"]
COUNTRIES = {
    "DE": ["Germany", "germany", "DE", "Deutschland", "DEU"],
    "US": ["United States", "USA", "us", "U.S.A."],
    "GB": ["United Kingdom", "UK", "england", "GB"],
    "FR": ["France", "FR", "france"],
    None: ["Atlantis", "EMEA", ""],
}
PHONES = {
    "DE": ["030 1234567", "+49 30 1234567", "0049 30 1234567"],
    "US": ["(415) 555-2671", "415.555.2671", "+1 415 555 2671"],
    "GB": ["020 7946 0958", "+44 20 7946 0958"],
    "FR": ["01 23 45 67 89", "+33 1 23 45 67 89"],
    None: ["12345", "call me", ""],
}
FIRST = ["Jane", "John", "Anna", "Lukas", "Marie", "Tom", "Sofia", "Ben", "Lea", "Omar"]


def messy_csv(rows: int, seed: int = 5) -> tuple[bytes, bytes]:
    """(the lead CSV, the account CSV)."""
    rng = random.Random(seed)
    lines = ["E-Mail Address;First Name;Last Name;Company Name;Country/Region;Phone #;Title"]
    earlier: list[list[str]] = []
    for i in range(rows):
        if earlier and rng.random() < 0.12:  # a duplicate of an earlier row, spelled otherwise
            row = list(rng.choice(earlier))
            local, _, domain = row[0].partition("@")
            if domain == "gmail.com":
                row[0] = f"{local[:2]}.{local[2:]}+{rng.choice(['news', 'promo'])}@gmail.com"
            else:
                row[0] = f"{local.upper()}+event@{domain.upper()}"
            row[6] = rng.choice(["VP Sales", "Head of Marketing", row[6]])
            lines.append(";".join(row))
            continue
        first, last = rng.choice(FIRST), f"Doe{i}"
        company, domain = rng.choice(COMPANIES)
        base = company.rsplit(" ", 1)[0] if " " in company else company
        country = rng.choice([c for c in COUNTRIES if c] + ([None] if rng.random() < 0.2 else []))
        mail_domain = domain if domain and rng.random() < 0.7 else "gmail.com"
        email = f"{first}.{last}@{mail_domain}"
        if rng.random() < 0.5:
            email = email.title()
        if rng.random() < 0.015:
            email = ""
        elif rng.random() < 0.015:
            email = f"{first}.{last}@"
        row = [
            email,
            first,
            last,
            rng.choice(VARIANTS).format(base) if rng.random() < 0.9 else "",
            rng.choice(COUNTRIES[country]),
            rng.choice(PHONES[country]) if rng.random() < 0.8 else "",
            rng.choice(["CEO", "Software Engineer", "Marketing Manager", "CFO", ""]),
        ]
        earlier.append(row)
        lines.append(";".join(row))
    accounts = ["Account Name,Website,Account Owner"] + [
        f"{name},{domain or ''},am-{n}" for n, (name, domain) in enumerate(COMPANIES)
    ]
    return ("\ufeff" + "\n".join(lines) + "\n").encode(), ("\n".join(accounts) + "\n").encode()


async def run(leads_csv: bytes, accounts_csv: bytes, rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_service(create_app, IntakeSettings, Path(tmp)) as (client, runtime):
            admin = {**auth_header("admin", "ops"), "content-type": "text/csv"}
            r = await client.post("/v1/accounts/import", content=accounts_csv, headers=admin)
            print("accounts:", r.json()["created"], "created")
            r = await client.post(
                "/v1/leads/import",
                content=leads_csv,
                headers={**auth_header("integration", "ops"), "content-type": "text/csv"},
            )
            result = r.json()
            async with runtime.db.sessions() as session:
                leads = list((await session.scalars(select(Lead))).all())
    normalised: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    for lead in leads:
        unnormalized = lead.unnormalized or {}
        normalised["email (lower-case)"] += lead.email == (lead.email or "").lower()
        normalised["email folded (key differs)"] += lead.email != lead.email_normalized
        normalised["country (ISO code)"] += lead.country is not None
        normalised["phone (E.164)"] += bool(lead.phone and lead.phone.startswith("+"))
        normalised["domain"] += lead.domain is not None
        normalised["seniority from title"] += lead.seniority is not None
        for name in unnormalized:
            kept[name] += 1
        if lead.account:
            matched[lead.account["match"]] += 1
    print(
        f"rows {rows}: leads {len(leads)}, accepted {result['accepted']}, merged "
        f"{result['merged']}, rejected {result['rejected_count']}"
    )
    print("normalised:", dict(normalised))
    print("kept as given (warnings):", dict(kept))
    print("matched to accounts:", dict(matched), "of", len(leads))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    leads_csv, accounts_csv = messy_csv(args.rows)
    if args.write is not None:
        args.write.write_bytes(leads_csv)
    asyncio.run(run(leads_csv, accounts_csv, args.rows))


if __name__ == "__main__":
    main()
