"""Secrets, tokens, signatures and keys are compared with hmac.compare_digest only.

``==`` stops at the first differing character, so its timing tells an attacker how much of a
guess was right. This test reads the production code and fails on any ``==``/``!=``/``in``
whose operand is named like a secret.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(
    r"(^|_)(token|secret|signature|sig|digest|password|passwd|api_?key|form_key|mac|"
    r"credentials?)($|_|s$)",
    re.IGNORECASE,
)
# Names that match the pattern but hold no secret value.
NOT_SECRET = {"token_type", "secrets_old_keys"}


def _production_files() -> list[Path]:
    roots = [ROOT / "shared" / "leadflow_shared", ROOT / "launcher" / "leadflow_launcher"]
    roots += sorted((ROOT / "services").glob("*/leadflow_*"))
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.parts and "tests" not in path.parts
    ]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return None


def _secret_comparisons(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        for operand in [node.left, *node.comparators]:
            name = _name(operand)
            if name and name not in NOT_SECRET and SECRET_NAME.search(name):
                found.append((node.lineno, name))
    return found


def test_the_checker_finds_a_plain_comparison() -> None:
    assert _secret_comparisons("ok = given_signature == expected") == [(1, "given_signature")]
    assert _secret_comparisons("ok = settings.jwt_secret != DEV") == [(1, "jwt_secret")]
    assert _secret_comparisons("ok = hmac.compare_digest(a_token, b)") == []


def test_no_secret_is_compared_with_eq_in_production_code() -> None:
    files = _production_files()
    assert len(files) > 50
    offenders = [
        f"{path.relative_to(ROOT)}:{line} ({name})"
        for path in files
        for line, name in _secret_comparisons(path.read_text())
    ]
    assert not offenders, f"use hmac.compare_digest: {offenders}"
