"""Translation check: ``python -m patron.core.i18n_check`` (run by ``scripts/lint`` and a test).

It re-extracts every message from the code and the console templates (``babel.cfg`` at the
repository root: ``src/patron/**.py`` with the keywords ``_``, ``N_``, ``gettext``, ``ngettext``…,
and ``src/patron/web/templates/**.html`` through Jinja2's i18n extension) into a temporary
catalog, then fails — exit status 1, with one line per problem — when:

* a message in the code or templates is missing from ``src/patron/locale/messages.pot`` (the
  template is stale: run ``pybabel extract`` and ``pybabel update``, see ``docs``/CONTRIBUTING) or
  from a ``vi``, ``hu`` or ``th`` catalog;
* a ``vi``/``hu``/``th`` entry is empty, fuzzy, or identical to the English text;
* a translation's placeholders (``%(name)s``, ``%s``, ``%d``, ``{name}``) differ from the msgid's;
* a plural entry has a different number of forms than its language (``vi``, ``hu`` and ``th`` have
  one plural form), or a catalog's ``Plural-Forms`` header is wrong.

Identical translations are accepted only for the allow-list below: brand and product names and
internationally used codes that are written the same in every language (Patron, Zalo, LINE, SMS,
CSV, JSON, API, URL, OK, ID) and, per language, words that language borrows unchanged (Vietnamese
writes "Email" and "Tag"; Hungarian "Név" is not English, so nothing else is listed). Keep the list
short: every addition is a word a native speaker really writes as in English.

Entries kept in a catalog after their message left the code (obsolete ones) are not errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

TRANSLATED_LANGUAGES: tuple[str, ...] = ("vi", "hu", "th")
PLURAL_FORMS: dict[str, str] = {
    "vi": "nplurals=1; plural=0;",
    "hu": "nplurals=1; plural=0;",
    "th": "nplurals=1; plural=0;",
}

#: Messages that may be "translated" as themselves, in every language or in one.
ALLOWED_IDENTICAL: dict[str, frozenset[str]] = {
    "*": frozenset({"Patron", "Zalo", "LINE", "SMS", "CSV", "JSON", "API", "URL", "OK", "ID"}),
    "vi": frozenset({"Email", "Tag"}),
    "hu": frozenset(),
    "th": frozenset(),
}

_PLACEHOLDER = re.compile(
    r"%\([A-Za-z_][A-Za-z0-9_]*\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"
    r"|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"
    r"|\{[A-Za-z_][A-Za-z0-9_]*\}"
)


@dataclass(frozen=True)
class Problem:
    language: str
    msgid: str
    issue: str

    def __str__(self) -> str:
        return f"{self.language}: {self.issue}: {self.msgid!r}"


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest directory above ``start`` holding ``babel.cfg``."""
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "babel.cfg").is_file():
            return candidate
    raise FileNotFoundError("babel.cfg not found above " + str(here))


def locale_dir(root: Path) -> Path:
    return root / "src" / "patron" / "locale"


def placeholders(text: str) -> Counter[str]:
    return Counter(_PLACEHOLDER.findall(text.replace("%%", "")))


def extract(root: Path) -> Catalog:
    """Extract the messages of the code and templates the way ``pybabel extract -F babel.cfg`` does."""
    with (root / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]
    src = root / "src"

    def only_src(dirpath: str | Path) -> bool:
        path = Path(dirpath).resolve()
        inside = path in (root, src) or src in path.parents
        return inside and not path.name.startswith((".", "_"))

    catalog = Catalog(project="Patron")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root),
        method_map,
        options_map,
        keywords=DEFAULT_KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
        directory_filter=only_src,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


def _strings(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _msgid(message: Message) -> str:
    return _strings(message.id)[0]


def check_translation(language: str, message: Message) -> list[str]:
    """What is wrong with one catalog entry (an empty list when nothing is)."""
    issues: list[str] = []
    ids = _strings(message.id)
    strings = _strings(message.string)
    if message.fuzzy:
        issues.append("fuzzy")
    if message.pluralizable and len(strings) != 1:
        issues.append(f"{len(strings)} plural forms, {language} has 1")
    if not strings or any(not s.strip() for s in strings):
        issues.append("empty")
        return issues
    allowed = ALLOWED_IDENTICAL["*"] | ALLOWED_IDENTICAL.get(language, frozenset())
    if any(s.strip() in {i.strip() for i in ids} for s in strings) and ids[0] not in allowed:
        issues.append("identical to the English text")
    wanted = placeholders(ids[0])
    if len(ids) > 1:
        wanted |= placeholders(ids[1])
    for text in strings:
        if placeholders(text) != wanted:
            have = sorted(placeholders(text).elements())
            issues.append(f"placeholders {have} differ from {sorted(wanted.elements())}")
            break
    return issues


def check(
    root: Path, languages: Iterable[str] = TRANSLATED_LANGUAGES, *, extracted: Catalog | None = None
) -> list[Problem]:
    """Every problem of the template and the catalogs against the messages in the code."""
    problems: list[Problem] = []
    extracted = extracted if extracted is not None else extract(root)
    wanted = {_msgid(m): m for m in extracted if m.id}
    pot_path = locale_dir(root) / "messages.pot"
    if not pot_path.is_file():
        problems.append(Problem("pot", str(pot_path), "missing template"))
    else:
        pot = _read(pot_path)
        in_pot = {_msgid(m) for m in pot if m.id}
        problems += [
            Problem("pot", msgid, "missing from messages.pot") for msgid in sorted(set(wanted) - in_pot)
        ]
    for language in languages:
        po_path = locale_dir(root) / language / "LC_MESSAGES" / "messages.po"
        if not po_path.is_file():
            problems.append(Problem(language, str(po_path), "missing catalog"))
            continue
        catalog = _read(po_path, language)
        header = dict(catalog.mime_headers).get("Plural-Forms", "")
        if " ".join(header.split()) != PLURAL_FORMS[language]:
            problems.append(Problem(language, header, f"Plural-Forms should be {PLURAL_FORMS[language]!r}"))
        entries = {_msgid(m): m for m in catalog if m.id}
        for msgid in sorted(wanted):
            entry = entries.get(msgid)
            if entry is None:
                problems.append(Problem(language, msgid, "missing"))
                continue
            if wanted[msgid].pluralizable and not entry.pluralizable:
                problems.append(Problem(language, msgid, "plural message translated without plural forms"))
            problems += [Problem(language, msgid, issue) for issue in check_translation(language, entry)]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m patron.core.i18n_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--root", type=Path, default=None, help="repository root (holding babel.cfg)")
    args = parser.parse_args(argv)
    root = find_root(args.root) if args.root else find_root()
    extracted = extract(root)
    problems = check(root, extracted=extracted)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            f"i18n: {len(problems)} problem(s). Update the catalogs: pybabel extract -F babel.cfg "
            "-o src/patron/locale/messages.pot . && pybabel update -i src/patron/locale/messages.pot "
            "-d src/patron/locale, then translate.",
            file=sys.stderr,
        )
        return 1
    count = len({_msgid(m) for m in extracted if m.id})
    print(f"i18n: {count} messages, translated in {', '.join(TRANSLATED_LANGUAGES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
