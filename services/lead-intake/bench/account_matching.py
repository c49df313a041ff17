"""Lead-to-account matching cost against 100,000 generated accounts, per lead.

Accounts get realistic names (a first word from ~600, one or two more words, a legal
form) and a domain for most; the leads are a mix: a third from an account's domain, a
third with an account's name spelled otherwise (another legal form, case, punctuation,
a typo), a third unknown companies (many on free mail). Measures ``AccountIndex.match``
per lead (what a capture adds per lead; the index is in memory) and the index load.

    .venv/bin/python services/lead-intake/bench/account_matching.py [--accounts 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from types import SimpleNamespace

from leadflow_intake.accounts import AccountIndex, company_key

FIRST = [
    "".join(p)
    for p in zip(
        ["Ac", "Glo", "Ini", "Hoo", "Umb", "Sty", "Wa", "Cy", "Ve", "Lu", "Ne", "Qua"] * 50,
        ["me", "bex", "tech", "li", "rella", "rk", "yne", "ber", "rtex", "mina", "xo", "nta"] * 50,
        [c * (1 + i // 144) for i, c in enumerate(string.ascii_lowercase * 24)][:600],
        strict=False,
    )
]
WORDS = (
    "Systems Solutions Software Analytics Labs Health Energy Logistics Capital Foods "
    "Robotics Media Networks Partners Consulting Industries Dynamics Cloud Data Bio"
).split()
FORMS = ["Inc", "Inc.", "GmbH", "Ltd", "LLC", "S.A.", "AG", "B.V.", "Corp", "", "", ""]
OTHER_FORMS = ["Incorporated", "gmbh", "Limited", "llc", "SA", "Corporation", ""]


def accounts(n: int, rng: random.Random) -> list[SimpleNamespace]:
    out = []
    for i in range(n):
        words = [rng.choice(FIRST), *rng.sample(WORDS, rng.choice((1, 2))), rng.choice(FORMS)]
        name = " ".join(w for w in words if w) + ("" if i < len(FIRST) * 40 else f" {i}")
        domain = f"{company_key(name).replace(' ', '')}{i}.com" if rng.random() < 0.8 else None
        out.append(
            SimpleNamespace(
                id=f"acc-{i}", name=name, name_key=company_key(name), domain=domain, owner="am"
            )
        )
    return out


def typo(text: str, rng: random.Random) -> str:
    if len(text) < 12:
        return text
    at = rng.randrange(4, len(text) - 1)
    return text[:at] + text[at + 1 :]


Lead = tuple[str, str, str | None]  # domain, company, the account it belongs to


def leads(accs: list[SimpleNamespace], n: int, rng: random.Random) -> list[Lead]:
    out: list[Lead] = []
    for _ in range(n):
        acc = rng.choice(accs)
        kind = rng.random()
        if kind < 1 / 3 and acc.domain:
            out.append((acc.domain, acc.name, acc.id))
        elif kind < 2 / 3:
            base = " ".join(acc.name.split()[:-1]) if acc.name.split()[-1] in FORMS else acc.name
            name = typo(f"{base.upper()}, {rng.choice(OTHER_FORMS)}", rng)
            out.append(("gmail.com", name, acc.id))
        else:
            out.append(("gmail.com", f"{rng.choice(FIRST)} Unknown {rng.choice(WORDS)} Co", None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(11)
    accs = accounts(args.accounts, rng)
    index = AccountIndex()
    start = time.perf_counter()
    for acc in accs:
        index.put(acc)
    load_s = time.perf_counter() - start
    sizes = sorted(len(ids) for _, ids in index.blocks.values())
    sample = leads(accs, args.leads, rng)
    found: dict[str | None, int] = {"domain": 0, "name": 0, None: 0}
    right = wrong = missed = 0
    samples = []
    for domain, company, expected in sample:
        t0 = time.perf_counter_ns()
        match = index.match(domain, company)
        samples.append((time.perf_counter_ns() - t0) / 1000)
        found[match["match"] if match else None] += 1
        got = match["account_id"] if match else None
        right += got is not None and got == expected
        wrong += got is not None and got != expected
        missed += got is None and expected is not None
    samples.sort()
    print(
        f"accounts {len(index)}, blocks {len(sizes)} (largest {sizes[-1]}, median "
        f"{sizes[len(sizes) // 2]}), index built in {load_s:.2f} s"
    )
    print(
        f"leads {len(sample)}: matched by domain {found['domain']}, by name {found['name']}, "
        f"none {found[None]}; right {right}, wrong {wrong}, missed {missed}"
    )
    print(
        f"match per lead: mean {statistics.fmean(samples):.0f} us, "
        f"p50 {samples[len(samples) // 2]:.0f} us, p99 {samples[int(len(samples) * 0.99)]:.0f} us, "
        f"max {samples[-1]:.0f} us"
    )


if __name__ == "__main__":
    main()
