"""Customer lifecycle handlers: merge, erase and export run across every domain in the caller's
transaction. ``customers`` calls them; each domain registers one at start-up (the adapter wires them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session


class LifecycleHandler(Protocol):
    name: str

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        """Move every row of ``source_id`` to ``target_id``."""

    def erase(self, session: Session, *, customer_id: str) -> None:
        """Anonymise the customer's personal data, keeping ledgers consistent."""

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        """Everything this domain holds about the customer, JSON-serialisable."""


@dataclass
class LifecycleRegistry:
    handlers: dict[str, LifecycleHandler] = field(default_factory=dict)

    def register(self, handler: LifecycleHandler) -> None:
        self.handlers[handler.name] = handler

    def all(self) -> list[LifecycleHandler]:
        return [self.handlers[k] for k in sorted(self.handlers)]


lifecycle = LifecycleRegistry()
