from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

import leadflow_shared.auth as auth
from leadflow_shared.auth import Principal, decode_token, ensure_owner, mint_token
from leadflow_shared.errors import Forbidden, Unauthorized
from leadflow_shared.settings import DEV_JWT_SECRET, ServiceSettings

SECRET = DEV_JWT_SECRET


def test_token_round_trip() -> None:
    token = mint_token(SECRET, sub="sdr-ana", role="sdr")
    assert decode_token(SECRET, token) == Principal(sub="sdr-ana", role="sdr")


def test_expired_wrong_secret_and_unknown_role_are_unauthorized() -> None:
    expired = mint_token(SECRET, sub="a", role="sdr", ttl=timedelta(seconds=-1))
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(SECRET, expired)
    with pytest.raises(Unauthorized):
        decode_token(
            "another-secret-of-at-least-32-chars!!", mint_token(SECRET, sub="a", role="ae")
        )
    forged = jwt.encode({"sub": "a", "role": "emperor", "exp": 9999999999}, SECRET, "HS256")
    with pytest.raises(Unauthorized, match="role"):
        decode_token(SECRET, forged)
    none_alg = jwt.encode({"sub": "a", "role": "admin", "exp": 9999999999}, "", "none")
    with pytest.raises(Unauthorized):
        decode_token(SECRET, none_alg)


def test_verified_tokens_are_remembered_only_until_they_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-request cache of verified tokens never outlives a token, never admits a
    token that did not verify, and never serves a token under another secret."""
    auth._VERIFIED.clear()
    token = mint_token(SECRET, sub="sdr-ana", role="sdr", ttl=timedelta(seconds=60))
    assert auth._decode_cached(SECRET, token) == Principal(sub="sdr-ana", role="sdr")
    assert (SECRET, token) in auth._VERIFIED
    with pytest.raises(Unauthorized):
        auth._decode_cached("another-secret-of-at-least-32-chars!!", token)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(Unauthorized):
        auth._decode_cached(SECRET, tampered)
    assert (SECRET, tampered) not in auth._VERIFIED
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _LaterDatetime, raising=False)
    with pytest.raises(Unauthorized, match="expired"):
        auth._decode_cached(SECRET, token)


class _LaterDatetime:
    """PyJWT's clock moved forward like ``time.time`` above."""

    @staticmethod
    def now(tz: object = None) -> object:
        import datetime as real

        return real.datetime.now(real.UTC) + real.timedelta(seconds=120)


def test_reps_act_only_on_their_own_managers_on_all() -> None:
    ensure_owner(Principal("ana", "sdr"), "ana")
    ensure_owner(Principal("maya", "manager"), "ana")
    with pytest.raises(Forbidden):
        ensure_owner(Principal("ben", "sdr"), "ana")
    with pytest.raises(Forbidden):
        ensure_owner(Principal("ben", "sdr"), None)


def test_placeholder_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        ServiceSettings(environment="production", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValueError, match="32"):
        ServiceSettings(jwt_secret="short")
    ok = ServiceSettings(environment="production", jwt_secret="x" * 40)
    assert ok.database_url.startswith("sqlite+aiosqlite:///")


def test_json_logs_carry_trace_id_and_stack_but_not_the_error_message() -> None:
    import json
    import logging

    from leadflow_shared.observability import JsonFormatter, trace_context

    formatter = JsonFormatter("svc")
    email = "jane" + ".doe@bigcorp.com"
    try:
        raise ValueError(f"{email} is personal data")
    except ValueError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", None, (type(exc), exc, exc.__traceback__)
        )
    with trace_context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"):
        line = formatter.format(record)
    entry = json.loads(line)
    assert entry["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert entry["error_type"] == "ValueError" and "test_auth.py" in entry["stack"]
    assert "jane.doe" not in line
