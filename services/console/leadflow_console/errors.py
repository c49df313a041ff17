"""console's errors beyond the shared ones: the broker view can be off or unreachable."""

from __future__ import annotations

from leadflow_shared.errors import ServiceError


class BrokerDisabled(ServiceError):
    status_code = 503
    code = "broker_disabled"


class BrokerUnavailable(ServiceError):
    status_code = 503
    code = "broker_unavailable"
