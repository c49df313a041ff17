"""Flat key/value input (browser forms, CSV rows) to a validated :class:`LeadIn`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadflow_intake.schemas import LeadIn

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
LEAD_KEYS = frozenset(LeadIn.model_fields) - {"utm", "consent", "custom"}
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y"})
IGNORED = frozenset({"_honeypot"})


def lead_from_flat(values: Mapping[str, str]) -> LeadIn:
    """Map ``utm_*``, ``consent_marketing``, ``consent_text`` (the consent text version:
    ``consent.text``) and lead fields; other keys go to ``custom``.

    Raises pydantic's ``ValidationError`` naming each bad field.
    """
    body: dict[str, Any] = {"utm": {}, "consent": {}, "custom": {}}
    for key, raw in values.items():
        value = raw.strip()
        if key in IGNORED or value == "":
            continue
        if key.startswith("utm_") and key[4:] in UTM_KEYS:
            body["utm"][key[4:]] = value
        elif key == "consent_marketing":
            body["consent"]["marketing"] = value.lower() in TRUE_WORDS
        elif key == "consent_text":
            body["consent"]["text"] = value
        elif key in LEAD_KEYS:
            body[key] = value
        else:
            body["custom"][key[:100]] = value
    return LeadIn.model_validate(body)
