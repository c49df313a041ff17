"""Starting and stopping the delivery worker with the service."""

from __future__ import annotations

import logging

from leadflow_shared.service import ServiceRuntime
from leadflow_webhooks.sender import new_http_client
from leadflow_webhooks.settings import WebhooksSettings
from leadflow_webhooks.subscribed_types import subscribed_types
from leadflow_webhooks.target_policy import TargetPolicy
from leadflow_webhooks.worker import DeliveryWorker

WORKER = "delivery_worker"


def settings_of(runtime: ServiceRuntime) -> WebhooksSettings:
    settings = runtime.settings
    assert isinstance(settings, WebhooksSettings)
    return settings


def target_policy(settings: WebhooksSettings) -> TargetPolicy:
    return TargetPolicy.from_settings(settings.allow_private_targets, settings.allowed_cidrs)


def worker_of(runtime: ServiceRuntime) -> DeliveryWorker | None:
    worker = runtime.state.get(WORKER)
    return worker if isinstance(worker, DeliveryWorker) else None


async def start_delivery_worker(runtime: ServiceRuntime) -> None:
    # httpx logs every request URL at INFO; a webhook URL can itself be a credential
    # (Slack-style incoming webhooks), so only warnings pass.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = settings_of(runtime)
    worker = DeliveryWorker(
        runtime.db,
        new_http_client(target_policy(settings)),
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
