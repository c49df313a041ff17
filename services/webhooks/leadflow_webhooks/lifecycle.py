"""Starting and stopping the delivery worker with the service."""

from __future__ import annotations

import logging

from leadflow_shared.observability import log_fields
from leadflow_shared.service import ServiceRuntime
from leadflow_webhooks.secret_box import SecretBox, reseal_under_current_key
from leadflow_webhooks.sender import new_http_client
from leadflow_webhooks.settings import WebhooksSettings
from leadflow_webhooks.subscribed_types import subscribed_types
from leadflow_webhooks.target_policy import TargetPolicy
from leadflow_webhooks.worker import DeliveryWorker

WORKER = "delivery_worker"
BOX = "secret_box"

log = logging.getLogger(__name__)


def settings_of(runtime: ServiceRuntime) -> WebhooksSettings:
    settings = runtime.settings
    assert isinstance(settings, WebhooksSettings)
    return settings


def target_policy(settings: WebhooksSettings) -> TargetPolicy:
    return TargetPolicy.from_settings(settings.allow_private_targets, settings.allowed_cidrs)


def secret_box_of(runtime: ServiceRuntime) -> SecretBox:
    box = runtime.state.get(BOX)
    if not isinstance(box, SecretBox):
        box = runtime.state[BOX] = settings_of(runtime).secret_box()
    return box


def worker_of(runtime: ServiceRuntime) -> DeliveryWorker | None:
    worker = runtime.state.get(WORKER)
    return worker if isinstance(worker, DeliveryWorker) else None


async def start_delivery_worker(runtime: ServiceRuntime) -> None:
    # httpx logs every request URL at INFO; a webhook URL can itself be a credential
    # (Slack-style incoming webhooks), so only warnings pass.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = settings_of(runtime)
    box = secret_box_of(runtime)
    # After a key rotation, secrets under an old key move to the current one.
    async with runtime.db.transaction() as session:
        resealed = await reseal_under_current_key(session, box)
    if resealed:
        log.info("webhook secrets re-encrypted", extra=log_fields(count=resealed))
    worker = DeliveryWorker(
        runtime.db,
        new_http_client(target_policy(settings)),
        box,
        retry_schedule_s=settings.retry_schedule_s,
        timeout_s=settings.delivery_timeout_s,
        max_concurrent=settings.max_concurrent_deliveries,
        max_per_subscription=settings.max_concurrent_per_subscription,
        poll_interval_s=settings.delivery_poll_interval_s,
    )
    runtime.state[WORKER] = worker
    worker.start()
    await subscribed_types.start(runtime.db)


async def stop_delivery_worker(runtime: ServiceRuntime) -> None:
    await subscribed_types.stop()
    worker = worker_of(runtime)
    if worker is not None:
        await worker.stop()
