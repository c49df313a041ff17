"""Normalisation cost per lead (contract v2 cleaning on capture), in-process.

A messy but realistic mix: country names and codes in any case, national phone formats
with the country as hint, plus-addressed and mixed-case emails, free-mail and corporate
domains, websites and titles. Two figures: every lead distinct (cold caches: every
domain, title and website new) and the usual case where domains and titles repeat.

    .venv/bin/python services/lead-intake/bench/normalise_cost.py [--leads 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from leadflow_intake.capture import new_lead_row
from leadflow_intake.normalise import (
    domain_facts,
    normalise,
    registrable_domain,
    title_facts,
)
from leadflow_intake.schemas import LeadIn
from leadflow_shared.ids import utcnow

COUNTRIES = ["Germany", "germany", "DE", "DEU", "United States", "USA", "us", "France", "UK"]
PHONES = {"DE": "030 1234567", "US": "(415) 555-2671", "FR": "01 23 45 67 89", "GB": None}
TITLES = ["VP Engineering", "Head of Marketing", "CEO", "Software Engineer", "Sales Manager"]
DOMAINS = ["gmail.com", "bigcorp.com", "acme.co.uk", "example.de", "yahoo.com"]


def leads(n: int, *, distinct: bool, seed: int = 7) -> list[LeadIn]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        country = rng.choice(COUNTRIES)
        domain = f"corp{i}.com" if distinct else rng.choice(DOMAINS)
        title = f"{rng.choice(TITLES)} {i}" if distinct else rng.choice(TITLES)
        out.append(
            LeadIn(
                email=f"First.Last{i}+promo@{domain}",
                country=country,
                phone=rng.choice(["030 1234567", "+1 415 555 2671", "(415) 555-2671"]),
                title=title,
                website=f"https://www.{domain}/about" if rng.random() < 0.5 else None,
                employees=rng.choice([50, "1,000", "51-200"]),
            )
        )
    return out


def measure(batch: list[LeadIn], *, clear: bool) -> list[float]:
    if clear:
        for cached in (domain_facts, registrable_domain, title_facts):
            cached.cache_clear()
    now = utcnow()
    samples = []
    for lead in batch:
        start = time.perf_counter_ns()
        new_lead_row(lead, normalise(lead), now)  # cleaning + derived fields
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def report(name: str, samples: list[float]) -> None:
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    print(
        f"{name}: mean {statistics.fmean(samples):.1f} µs, p50 {p(0.5):.1f}, "
        f"p99 {p(0.99):.1f} per lead ({len(samples)} leads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=20_000)
    args = parser.parse_args()
    measure(leads(500, distinct=False, seed=1), clear=True)  # warm-up (imports, regexes)
    report("distinct domains/titles", measure(leads(args.leads, distinct=True), clear=True))
    report("repeating domains/titles", measure(leads(args.leads, distinct=False), clear=True))


if __name__ == "__main__":
    main()
