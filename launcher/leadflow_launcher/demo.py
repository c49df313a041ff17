"""Load the demo organisation through the public APIs (idempotent: safe on every start)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx


def current_quarter(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


def organisation() -> dict[str, Any]:
    text = resources.files("leadflow_launcher").joinpath("demo/organisation.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"demo: {what} failed with {response.status_code}: {response.text}")
    return response


def load_demo(urls: dict[str, str], admin_token: str, data_dir: Path) -> dict[str, str]:
    """Create reps, routing rules, quotas and a web form; returns facts worth printing."""
    org = organisation()
    headers = {"Authorization": f"Bearer {admin_token}"}
    facts: dict[str, str] = {}
    with httpx.Client(headers=headers, timeout=10) as client:
        routing = urls["routing"]
        for rep in org["reps"]:
            if client.get(f"{routing}/v1/reps/{rep['id']}").status_code == 404:
                _check(client.post(f"{routing}/v1/reps", json=rep), f"rep {rep['id']}")
        if client.get(f"{routing}/v1/routing/rules").json().get("version") == 0:
            _check(client.put(f"{routing}/v1/routing/rules", json=org["routing_rules"]), "rules")
        period = current_quarter()
        for quota in org["quotas"]:
            _check(
                client.put(
                    f"{urls['deals']}/v1/quotas/{quota['rep_id']}",
                    json={"period": period, "amount": quota["amount"]},
                ),
                f"quota {quota['rep_id']}",
            )
        form_file = data_dir / "demo-form.json"
        if form_file.exists():
            facts["form_key"] = json.loads(form_file.read_text())["form_key"]
        else:
            form = _check(
                client.post(f"{urls['lead-intake']}/v1/forms", json=org["form"]), "form"
            ).json()
            form_file.write_text(json.dumps({"form_key": form["form_key"]}))
            facts["form_key"] = form["form_key"]
    facts["reps"] = ", ".join(f"{r['id']} ({r['role']})" for r in org["reps"])
    facts["quota_period"] = period
    return facts


def lift_daily_capacity(routing: str, token: str) -> None:
    """The demo SDRs take 40 leads a day each; benchmarks and fault tests that push more
    leads than that measure speed and safety, not capacity, so they lift the cap."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as client:
        reps = _check(client.get(f"{routing}/v1/reps", params={"role": "sdr"}), "reps")
        for rep in reps.json():
            _check(
                client.patch(f"{routing}/v1/reps/{rep['id']}", json={"capacity_per_day": None}),
                f"rep {rep['id']}",
            )
