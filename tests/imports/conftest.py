"""Fixtures for import tests: run an import against the test database and read customers back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from patron.core.business import set_fx_rate
from patron.core.db import Database
from patron.customers import CustomerView, find_customer_id_by_external_id, get_customer
from patron.customers.models import Customer
from patron.imports import ImportKind, ImportOptions, ImportReport, run_import

Importer = Callable[..., ImportReport]


@pytest.fixture
def run(database: Database) -> Importer:
    def _run(kind: ImportKind | str, path: Path, **options: Any) -> ImportReport:
        return run_import(database, ImportKind(kind), path, ImportOptions(**options))

    return _run


@pytest.fixture
def customer(database: Database) -> Callable[[str], CustomerView | None]:
    def _get(external_id: str) -> CustomerView | None:
        with database.unit_of_work(write=False) as s:
            cid = find_customer_id_by_external_id(s, external_id)
            return None if cid is None else get_customer(s, cid)

    return _get


@pytest.fixture
def count_customers(database: Database) -> Callable[[], int]:
    def _count() -> int:
        with database.unit_of_work(write=False) as s:
            return int(s.scalar(select(func.count()).select_from(Customer)) or 0)

    return _count


@pytest.fixture
def fx_rates(database: Database) -> None:
    """EUR reporting currency with rates for the markets' currencies."""
    with database.unit_of_work() as s:
        for base, rate in (("VND", "0.000037"), ("THB", "0.025"), ("HUF", "0.0025"), ("USD", "0.92")):
            set_fx_rate(s, base=base, quote="EUR", valid_on=date(2000, 1, 1), rate=Decimal(rate))
