"""Roles and the permission table (pure policy, no I/O).

owner — everything; admin — everything but ownership; marketer — customers, segments, organisations,
exports, the loyalty programme (configure it and operate accounts: earn, redeem, adjust, checkout;
later journeys); agent — read customers and loyalty accounts, write timeline and consent (later
tickets); analyst — read everything, run analytics and exports; viewer — read only. Everyone but
agents reads the analytics results (retention KPIs are the marketer's daily bread).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MARKETER = "marketer"
    AGENT = "agent"
    ANALYST = "analyst"
    VIEWER = "viewer"


class Perm(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_ERASE = "customers:erase"
    TIMELINE_WRITE = "timeline:write"
    CONSENT_WRITE = "consent:write"
    TRAITS_WRITE = "traits:write"
    SEGMENTS_READ = "segments:read"
    SEGMENTS_WRITE = "segments:write"
    ORGANISATIONS_READ = "organisations:read"
    ORGANISATIONS_WRITE = "organisations:write"
    COMMERCE_READ = "commerce:read"
    COMMERCE_WRITE = "commerce:write"
    IMPORTS_RUN = "imports:run"
    EXPORTS_RUN = "exports:run"
    ANALYTICS_READ = "analytics:read"
    ANALYTICS_RUN = "analytics:run"
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    TOKENS_WRITE = "tokens:write"
    AUDIT_READ = "audit:read"
    LOYALTY_READ = "loyalty:read"
    LOYALTY_WRITE = "loyalty:write"
    LOYALTY_OPERATE = "loyalty:operate"
    OWNERSHIP = "ownership"


_READ = {
    Perm.ANALYTICS_READ,
    Perm.CUSTOMERS_READ,
    Perm.SEGMENTS_READ,
    Perm.ORGANISATIONS_READ,
    Perm.COMMERCE_READ,
    Perm.SETTINGS_READ,
    Perm.LOYALTY_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.ADMIN: frozenset(set(Perm) - {Perm.OWNERSHIP}),
    Role.MARKETER: frozenset(
        _READ
        | {
            Perm.CUSTOMERS_WRITE,
            Perm.TIMELINE_WRITE,
            Perm.CONSENT_WRITE,
            Perm.TRAITS_WRITE,
            Perm.SEGMENTS_WRITE,
            Perm.ORGANISATIONS_WRITE,
            Perm.EXPORTS_RUN,
            Perm.IMPORTS_RUN,
            Perm.TOKENS_WRITE,
            Perm.LOYALTY_WRITE,
            Perm.LOYALTY_OPERATE,
        }
    ),
    Role.AGENT: frozenset(
        {
            Perm.CUSTOMERS_READ,
            Perm.ORGANISATIONS_READ,
            Perm.COMMERCE_READ,
            Perm.SEGMENTS_READ,
            Perm.LOYALTY_READ,
            Perm.TIMELINE_WRITE,
            Perm.CONSENT_WRITE,
            Perm.TOKENS_WRITE,
        }
    ),
    Role.ANALYST: frozenset(
        _READ | {Perm.ANALYTICS_RUN, Perm.EXPORTS_RUN, Perm.AUDIT_READ, Perm.TOKENS_WRITE}
    ),
    Role.VIEWER: frozenset(_READ),
}

# Which roles a user of a given role may grant (to users or tokens).
ROLE_RANK: dict[Role, int] = {
    Role.OWNER: 100,
    Role.ADMIN: 90,
    Role.MARKETER: 50,
    Role.ANALYST: 40,
    Role.AGENT: 30,
    Role.VIEWER: 10,
}


def has_permission(role: Role | str, perm: Perm) -> bool:
    return perm in ROLE_PERMISSIONS[Role(role)]


def can_grant(granter: Role | str, role: Role | str) -> bool:
    """A token/user may be given a role whose permissions are a subset of the granter's."""
    g, r = Role(granter), Role(role)
    if r is Role.OWNER and g is not Role.OWNER:
        return False
    return ROLE_PERMISSIONS[r] <= ROLE_PERMISSIONS[g]
