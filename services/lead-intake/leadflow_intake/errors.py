"""lead-intake's own HTTP problems beyond the shared ones (mapped by the shared handler)."""

from __future__ import annotations

from leadflow_shared.errors import ServiceError


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"
