"""webhooks: delivers every leadflow event to subscribed sales tools (Standard Webhooks)."""
