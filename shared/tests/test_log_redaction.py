"""The log safeguard: no email, JWT, bearer credential or webhook secret reaches a log line."""

from __future__ import annotations

import json
import logging

from leadflow_shared.auth import mint_token
from leadflow_shared.observability import JsonFormatter, configure_logging, log_fields, redact
from leadflow_shared.settings import DEV_JWT_SECRET


def _line(msg: str, *args: object, **fields: object) -> str:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, msg, args or None, None)
    record.fields = log_fields(**fields)["fields"]
    return JsonFormatter("svc").format(record)


def test_secrets_and_emails_are_scrubbed_from_message_and_fields() -> None:
    token = mint_token(DEV_JWT_SECRET, sub="rep", role="sdr")
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/+=="
    line = _line(
        "call with Authorization: Bearer %s for %s",
        "opaque-credential-123",
        "Jane.Doe@BigCorp.com",
        url="https://x.example/hook?to=jane.doe%40bigcorp.com",
        token=token,
        detail=f"signing with {secret}",
    )
    entry = json.loads(line)  # still one valid JSON object
    for leaked in (
        "opaque-credential-123",
        "Jane.Doe@BigCorp.com",
        "jane.doe%40bigcorp.com",
        token,
        token.rsplit(".", 1)[1],
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ):
        assert leaked not in line
    assert entry["msg"] == "call with Authorization: Bearer [redacted] for [redacted-email]"
    assert entry["token"] == "[redacted-jwt]" and entry["detail"] == "signing with whsec_[redacted]"


def test_ids_counts_and_urls_without_personal_data_are_kept() -> None:
    text = '{"msg": "deal opened", "lead_id": "01J9ZK", "count": 3, "route": "/v1/leads/{id}"}'
    assert redact(text) == text
    line = _line("dsn", database="postgresql+asyncpg://postgres@127.0.0.1:5432/db")
    assert "postgres@127.0.0.1" in line  # a host address, not an email


def test_libraries_that_log_values_stay_at_warning_even_at_debug() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("svc", "DEBUG")
        for name in ("aiosqlite", "sqlalchemy.engine", "python_multipart", "httpx"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
