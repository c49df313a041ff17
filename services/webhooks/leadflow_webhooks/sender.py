"""One signed HTTP attempt of one delivery, and what came of it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from leadflow_webhooks.guarded_transport import AddressNotAllowed, GuardedTransport
from leadflow_webhooks.signing import sign
from leadflow_webhooks.target_policy import TargetPolicy

USER_AGENT = "leadflow-webhooks/1.0"
ADDRESS_NOT_ALLOWED = "address not allowed"


@dataclass(frozen=True)
class Message:
    """What one attempt sends: ``id`` is the ``webhook-id``, stable across retries."""

    id: str
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    # Refused by the SSRF policy: retrying cannot help.
    blocked: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_http_client(
    policy: TargetPolicy, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client every attempt uses: guarded transport, no redirects, no proxies."""
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(policy),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


def signed_headers(message: Message, timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(message.secret, message.id, timestamp, message.body),
    }


def _describe(exc: BaseException) -> str:
    detail = str(exc).strip()
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text[:500]


async def send_attempt(
    client: httpx.AsyncClient, message: Message, timeout_s: float
) -> AttemptOutcome:
    """POST ``message`` once; never raises for network trouble (it becomes the outcome).

    The response body is not read: only the status matters, and a hostile endpoint must not
    make us download anything.
    """
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    headers = signed_headers(message, int(time.time()))
    try:
        async with asyncio.timeout(timeout_s):
            request = client.build_request(
                "POST",
                message.url,
                content=message.body,
                headers=headers,
                timeout=httpx.Timeout(timeout_s),
            )
            response = await client.send(request, stream=True)
            await response.aclose()
    except AddressNotAllowed:
        return AttemptOutcome(None, ADDRESS_NOT_ALLOWED, elapsed(), blocked=True)
    except (TimeoutError, httpx.TimeoutException):
        return AttemptOutcome(None, f"timeout after {timeout_s:g} s", elapsed())
    except httpx.HTTPError as exc:
        return AttemptOutcome(None, _describe(exc), elapsed())
    except OSError as exc:
        return AttemptOutcome(None, _describe(exc), elapsed())
    status = response.status_code
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return AttemptOutcome(status, error, elapsed())
