"""Event names the customers domain emits (payloads carry ids and field names, never personal data)."""

from __future__ import annotations

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_ERASED = "customer.erased"
CONSENT_CHANGED = "consent.changed"
