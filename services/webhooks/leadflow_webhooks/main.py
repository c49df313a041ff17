"""webhooks' app factory: ``uvicorn --factory leadflow_webhooks.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_shared.service import ServiceSpec, create_service_app
from leadflow_webhooks.api import deliveries, subscriptions
from leadflow_webhooks.handlers import handlers
from leadflow_webhooks.lifecycle import start_delivery_worker, stop_delivery_worker
from leadflow_webhooks.models import Base, messaging
from leadflow_webhooks.secret_box import use_for_migrations
from leadflow_webhooks.settings import WebhooksSettings

SPEC = ServiceSpec(
    name="webhooks",
    package="leadflow_webhooks",
    metadata=Base.metadata,
    tables=messaging,
    routers=[subscriptions.router, deliveries.router],
    handlers=handlers,
    on_start=[start_delivery_worker],
    on_stop=[stop_delivery_worker],
    description=(
        "Delivers every leadflow event to subscribed sales tools as signed HTTP POSTs "
        "(Standard Webhooks), with retries, a delivery log and SSRF protection."
    ),
)


def create_app(settings: WebhooksSettings | None = None) -> FastAPI:
    settings = settings or WebhooksSettings()
    # The start-up migrations encrypt plaintext secrets with this app's keys.
    use_for_migrations(settings.secret_box())
    return create_service_app(SPEC, settings)
