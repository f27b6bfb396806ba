"""Loyalty domain events (outbox). Payloads carry ids and point counts, never personal data:

- ``points.earned``: customer_id, account_id, entry_id, points (to the available balance),
  debt_paid, source, source_id
- ``points.expiring``: customer_id, account_id, points, expires_at (notice, ``-ing``)
- ``points.expired``: customer_id, account_id, entry_id, points
- ``points.reversed``: customer_id, account_id, entry_id, points, debt (shortfall recorded as debt),
  source, source_id
- ``points.adjusted``: customer_id, account_id, entry_id, points, reason
- ``points.redeemed``: customer_id, account_id, redemption_id, points, status
- ``loyalty.enrolled``: customer_id, account_id
- ``reward.redeemed``: customer_id, account_id, redemption_id, reward_id, kind, points
- ``tier.changed``: customer_id, account_id, from, to (tier codes or null), direction (upgrade or
  downgrade), qualifying_value
"""

from __future__ import annotations

POINTS_EARNED = "points.earned"
POINTS_EXPIRING = "points.expiring"
POINTS_EXPIRED = "points.expired"
POINTS_REVERSED = "points.reversed"
POINTS_ADJUSTED = "points.adjusted"
POINTS_REDEEMED = "points.redeemed"
LOYALTY_ENROLLED = "loyalty.enrolled"
TIER_CHANGED = "tier.changed"
REWARD_REDEEMED = "reward.redeemed"

ALL_EVENTS: tuple[str, ...] = (
    POINTS_EARNED,
    POINTS_EXPIRING,
    POINTS_EXPIRED,
    POINTS_REVERSED,
    POINTS_ADJUSTED,
    POINTS_REDEEMED,
    LOYALTY_ENROLLED,
    TIER_CHANGED,
    REWARD_REDEEMED,
)
