"""Browser tests: Debian Chromium driven by Playwright (sync API) against a real uvicorn server.

Never ``playwright install``: the system Chromium (``apt-get install -y chromium fonts-thai-tlwg``) is
launched directly. Without it the tests skip, except under ``CI=true`` where they fail.
Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from patron.auth import Role, create_user
from patron.core.business import set_fx_rate, update_business
from patron.core.db import Database, dispose_engines, get_engine
from patron.customers import CustomerCreateInput, create_customer
from tests.support import LiveServer, fresh_database_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
OWNER_EMAIL = "owner@browser.example"
OWNER_PASSWORD = "correct horse battery"

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium fonts-thai-tlwg"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def seed(database_url: str) -> dict[str, str]:
    """The owner and a few customers with Vietnamese, Thai and Hungarian names."""
    db = Database(get_engine(database_url))
    with db.unit_of_work() as s:
        create_user(s, email=OWNER_EMAIL, password=OWNER_PASSWORD, role=Role.OWNER, name="Owner")
        update_business(s, reporting_currency="EUR", time_zone="Asia/Ho_Chi_Minh")
        set_fx_rate(s, base="EUR", quote="VND", valid_on=date(2020, 1, 1), rate=Decimal("27000"))
        people = {
            "an": create_customer(
                s,
                CustomerCreateInput(
                    first_name="Văn An",
                    last_name="Nguyễn",
                    form_of_address="anh",
                    email="an.nguyen@example.vn",
                    phone="0912 345 678",
                    country="VN",
                    language="vi",
                    tags=("vip",),
                ),
            ).id,
            "lan": create_customer(
                s,
                CustomerCreateInput(
                    first_name="Thị Lan",
                    last_name="Trần",
                    form_of_address="chị",
                    email="lan.tran@example.vn",
                    country="VN",
                    language="vi",
                ),
            ).id,
            "dien": create_customer(
                s,
                CustomerCreateInput(
                    first_name="Văn Điền",
                    last_name="Lê",
                    email="dien@example.vn",
                    country="VN",
                    language="vi",
                ),
            ).id,
            "somchai": create_customer(
                s,
                CustomerCreateInput(
                    first_name="สมชาย",
                    last_name="ใจดี",
                    email="somchai@example.th",
                    phone="081 234 5678",
                    country="TH",
                    language="th",
                ),
            ).id,
            "anna": create_customer(
                s,
                CustomerCreateInput(
                    first_name="Anna",
                    last_name="Kovács",
                    email="anna.kovacs@example.hu",
                    country="HU",
                    language="hu",
                ),
            ).id,
            "zoltan": create_customer(
                s,
                CustomerCreateInput(
                    first_name="Zoltán",
                    last_name="Szabó",
                    email="zoltan@example.hu",
                    country="HU",
                    language="hu",
                    tags=("vip",),
                ),
            ).id,
        }
    return people


@pytest.fixture(scope="module")
def live(
    template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    _require_chromium()
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("browser"))
    people = seed(url)
    dispose_engines()
    with LiveServer(url, workers=1) as server:
        yield server, people


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, live: tuple[LiveServer, dict[str, str]]) -> Iterator[object]:
    context = browser.new_context(
        base_url=live[0].url,
        viewport={"width": 1280, "height": 900},  # type: ignore[attr-defined]
        locale="en-GB",
        timezone_id="UTC",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
