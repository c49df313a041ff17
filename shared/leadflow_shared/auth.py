"""Bearer JWT (HS256) with roles and ownership checks.

Claims: ``sub`` (rep id or client name), ``role`` (one of :data:`ROLES`), ``exp``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadflow_shared.errors import Forbidden, Unauthorized
from leadflow_shared.ids import utcnow

ROLES = ("admin", "manager", "sdr", "ae", "am", "integration")
MANAGERS = frozenset({"admin", "manager"})

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGERS


def mint_token(secret: str, *, sub: str, role: str, ttl: timedelta = timedelta(hours=12)) -> str:
    """Sign a token for ``sub`` acting as ``role``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not sub:
        raise ValueError("sub must not be empty")
    now = utcnow()
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Principal:
    """Verify signature and expiry; raises :class:`Unauthorized` otherwise."""
    return _decode(secret, token)[0]


def _decode(secret: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired; mint a new one") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid bearer token") from exc
    role = claims.get("role")
    sub = claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise Unauthorized("token lacks a valid role or sub claim")
    return Principal(sub=sub, role=role), float(claims["exp"])


# Tokens verified before, until their ``exp``: a client sends the same token with every
# request, and verifying it (HMAC, JSON, claims) is a fixed cost per request. Only tokens
# that verified are kept (keyed by secret and token, so a rotated secret misses); an
# expired entry is verified again, which refuses it. Bounded: cleared when full.
_VERIFIED: dict[tuple[str, str], tuple[Principal, float]] = {}
_VERIFIED_MAX = 4096


def _decode_cached(secret: str, token: str) -> Principal:
    key = (secret, token)
    hit = _VERIFIED.get(key)
    if hit is not None and time.time() < hit[1]:
        return hit[0]
    principal, expires = _decode(secret, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = (principal, expires)
    return principal


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token (Authorization: Bearer <jwt>)")
    secret: str = request.app.state.runtime.settings.jwt_secret
    return _decode_cached(secret, credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only ``roles`` (admins are always admitted)."""
    allowed = frozenset(roles) | {"admin"}

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(
                f"role {principal.role!r} may not do this; needs one of "
                f"{', '.join(sorted(allowed))}"
            )
        return principal

    return dependency


def ensure_owner(principal: Principal, owner_id: str | None) -> None:
    """Reps act only on what is theirs; managers and admins act on everything."""
    if principal.is_manager:
        return
    if owner_id is None or principal.sub != owner_id:
        raise Forbidden("this is not assigned to you")
