"""Loyalty: points ledger, earning rules, tiers, rewards, referrals and coupons."""
