"""Loyalty errors with stable codes (rendered as problem+json by the web layer)."""

from __future__ import annotations

from patron.core.errors import Conflict, NotFound


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough points"


class NotEnrolled(Conflict):
    code = "not_enrolled"
    title = "The customer is not enrolled in the loyalty programme"


class AccountClosed(Conflict):
    code = "loyalty_account_closed"
    title = "The loyalty account is closed (merged or erased)"


class AccountNotFound(NotFound):
    code = "loyalty_account_not_found"
    title = "Loyalty account not found"


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    title = "Redemption not found"


class RedemptionState(Conflict):
    code = "invalid_redemption_state"
    title = "The redemption cannot change from its current status"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "The idempotency key was used for a different request"


class RuleNotFound(NotFound):
    code = "loyalty_rule_not_found"
    title = "Loyalty rule not found"


class MarketNotConfigured(NotFound):
    code = "loyalty_market_not_configured"
    title = "The market has no loyalty settings"
