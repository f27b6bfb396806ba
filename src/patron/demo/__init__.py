"""The demo business: ~2,000 customers across Vietnam, Hungary, Thailand and elsewhere with two years
of orders, deterministic for a seed. ``build_plan`` is pure; ``seed_demo`` writes the plan through the
customers and commerce domains in the caller's transaction."""

from patron.demo.contracts import DemoOptions, DemoPlan, DemoSummary
from patron.demo.plan import build_plan
from patron.demo.service import DatabaseNotEmpty, DemoRejected, database_is_empty, seed_demo

__all__ = [
    "DatabaseNotEmpty",
    "DemoOptions",
    "DemoPlan",
    "DemoRejected",
    "DemoSummary",
    "build_plan",
    "database_is_empty",
    "seed_demo",
]
