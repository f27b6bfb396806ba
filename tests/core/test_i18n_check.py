"""The translation check: the real catalogs pass it; each kind of defect is caught in a scratch
copy of the repository layout."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Message

from patron.core.i18n import gettext_for, translations
from patron.core.i18n_check import check, check_translation, find_root, main, placeholders

ROOT = find_root()


def test_the_catalogs_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(ROOT)]) == 0
    assert re.match(r"i18n: \d+ messages, translated in vi, hu, th", capsys.readouterr().out)


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "patron.core.i18n_check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "translated in vi, hu, th" in result.stdout


def test_translations_are_native_script() -> None:
    assert gettext_for("th")("Customers") == "ลูกค้า"
    assert gettext_for("vi")("Customers") == "Khách hàng"
    assert gettext_for("hu")("Customers") == "Ügyfelek"
    assert gettext_for("vi")("Log out") == "Đăng xuất"
    assert gettext_for("hu")("Settings") == "Beállítások"
    thai = gettext_for("th")("Record consent")
    assert all("\u0e00" <= ch <= "\u0e7f" or ch == " " for ch in thai)
    assert gettext_for("hu")("Address as: %(salutation)s") % {"salutation": "Kovács Anna"} == (
        "Megszólítás: Kovács Anna"
    )
    for language in ("vi", "hu", "th"):  # one plural form: every count uses form 0
        assert [translations(language).plural(n) for n in (0, 1, 2, 5, 21)] == [0, 0, 0, 0, 0]  # type: ignore[attr-defined]


def _message(msgid: str | tuple[str, str], string: str | tuple[str, ...], *, fuzzy: bool = False) -> Message:
    return Message(msgid, string, flags={"fuzzy"} if fuzzy else set())


def test_check_translation_finds_each_defect() -> None:
    assert check_translation("vi", _message("Customers", "Khách hàng")) == []
    assert check_translation("vi", _message("Customers", "")) == ["empty"]
    assert check_translation("hu", _message("Customers", "Ügyfelek", fuzzy=True)) == ["fuzzy"]
    assert check_translation("th", _message("Customers", "Customers")) == ["identical to the English text"]
    assert check_translation("th", _message("Zalo", "Zalo")) == []
    assert check_translation("vi", _message("Email", "Email")) == []
    assert check_translation("hu", _message("Email", "Email")) == ["identical to the English text"]
    assert check_translation("hu", _message("Hello %(name)s", "Szia %(nev)s")) == [
        "placeholders ['%(nev)s'] differ from ['%(name)s']"
    ]
    assert check_translation("vi", _message("%d orders", "đơn hàng")) == [
        "placeholders [] differ from ['%d']"
    ]
    assert check_translation("th", _message(("%(n)d order", "%(n)d orders"), ("%(n)d รายการ",))) == []
    assert check_translation(
        "th", _message(("%(n)d order", "%(n)d orders"), ("%(n)d รายการ", "x %(n)d"))
    ) == ["2 plural forms, th has 1"]


def test_placeholders_ignore_escaped_percent() -> None:
    assert placeholders("100%% of %(name)s and {count}") == {"%(name)s": 1, "{count}": 1}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A minimal repository: babel.cfg, one module, one template and the real catalogs."""
    shutil.copy(ROOT / "babel.cfg", tmp_path / "babel.cfg")
    package = tmp_path / "src" / "patron"
    (package / "web" / "templates").mkdir(parents=True)
    (package / "mod.py").write_text(
        'from patron.core.i18n import _\n\nLABEL = _("Customers")\n', encoding="utf-8"
    )
    (package / "web" / "templates" / "page.html").write_text("<p>{{ _('Log out') }}</p>\n", encoding="utf-8")
    shutil.copytree(ROOT / "src" / "patron" / "locale", package / "locale")
    return tmp_path


def test_scratch_copy_passes(scratch: Path) -> None:
    assert check(scratch) == []


def test_new_message_in_code_is_reported_missing(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = scratch / "src" / "patron" / "mod.py"
    module.write_text(
        module.read_text(encoding="utf-8") + 'OTHER = _("A brand-new sentence")\n', encoding="utf-8"
    )
    found = {(p.language, p.msgid, p.issue) for p in check(scratch)}
    assert found == {
        ("pot", "A brand-new sentence", "missing from messages.pot"),
        ("vi", "A brand-new sentence", "missing"),
        ("hu", "A brand-new sentence", "missing"),
        ("th", "A brand-new sentence", "missing"),
    }
    assert main(["--root", str(scratch)]) == 1
    assert "vi: missing: 'A brand-new sentence'" in capsys.readouterr().err


def test_new_message_in_template_is_reported(scratch: Path) -> None:
    page = scratch / "src" / "patron" / "web" / "templates" / "page.html"
    page.write_text("{% trans %}Only in a template{% endtrans %}\n", encoding="utf-8")
    assert ("th", "Only in a template", "missing") in {(p.language, p.msgid, p.issue) for p in check(scratch)}


def test_broken_catalog_entries_are_reported(scratch: Path) -> None:
    po = scratch / "src" / "patron" / "locale" / "th" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    text = text.replace('msgid "Customers"\nmsgstr "ลูกค้า"', 'msgid "Customers"\nmsgstr "Customers"')
    text = text.replace(
        'msgid "Log out"\nmsgstr "ออกจากระบบ"', '#, fuzzy\nmsgid "Log out"\nmsgstr "ออกจากระบบ"'
    )
    po.write_text(text, encoding="utf-8")
    found = {(p.language, p.msgid, p.issue) for p in check(scratch)}
    assert found == {
        ("th", "Customers", "identical to the English text"),
        ("th", "Log out", "fuzzy"),
    }


def test_wrong_plural_header_is_reported(scratch: Path) -> None:
    po = scratch / "src" / "patron" / "locale" / "hu" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8").replace("nplurals=1; plural=0;", "nplurals=2; plural=(n != 1);")
    po.write_text(text, encoding="utf-8")
    issues = [p.issue for p in check(scratch)]
    assert issues == ["Plural-Forms should be 'nplurals=1; plural=0;'"]
