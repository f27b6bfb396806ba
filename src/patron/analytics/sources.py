"""Sources: transaction files (CSV, Parquet, globs) and the live Patron database.

Every source becomes one normalised table in DuckDB, ``patron_tx``:

    customer_id VARCHAR, order_id VARCHAR, day INTEGER (days since 1970-01-01, a local date),
    amount DECIMAL(18, 4) (reporting currency), market VARCHAR, product VARCHAR,
    quantity DECIMAL(18, 4), referred BOOLEAN, line_only BOOLEAN (a product line of an order whose
    amount is on its order row: not a transaction of its own; database source only)

Files are parsed by DuckDB in one pass (dates in the ``--timezone``, amounts as decimals). Rows that
cannot be used are counted by problem; with ``--on-bad-rows fail`` (the default) the first ones are
named — file, row, column, value and problem — and nothing is analysed.
"""

from __future__ import annotations

import glob as globbing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa

from patron.analytics.contracts import AnalysisError, AnalyzeOptions, BadRow, SourceInfo
from patron.analytics.engine import TX_TABLE, VIEWS_TABLE

EPOCH = date(1970, 1, 1)
MAX_EXAMPLES = 5

PROBLEM_CUSTOMER = "a customer id is required"
PROBLEM_DATE = "not a date (expected ISO 8601, e.g. 2024-05-31 or 2024-05-31T14:05:00+07:00)"
PROBLEM_AMOUNT = "not a number (expected a decimal amount such as 12.50)"
PROBLEM_ORDER = "an order id is required"
PROBLEM_CURRENCY = "a currency code is required"
PROBLEM_QUANTITY = "not a number"
PROBLEM_REFUND = "a negative amount (a refund) needs --order-col to net it against its order"
PROBLEM_REFUND_EXCEEDS = "a refund that makes its order's total negative"
PROBLEM_FX = "no FX rate to the reporting currency on or before the date"


@dataclass(frozen=True)
class FxRates:
    """Dated rates into ``target``: rows of (currency, valid_on, units of target per unit)."""

    target: str
    rates: tuple[tuple[str, date, Decimal], ...]


def _exec(duck: Any, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """Run one statement to completion (DuckDB 2 refuses new work while a result is pending)."""
    result = duck.execute(sql, params) if params is not None else duck.execute(sql)
    rows: list[Any] = result.fetchall()
    return rows


def day_number(value: date) -> int:
    return (value - EPOCH).days


def from_day_number(value: int) -> date:
    return EPOCH + timedelta(days=int(value))


def check_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AnalysisError(f"unknown time zone {tz!r} (use an IANA name such as Asia/Bangkok)") from exc
    return tz


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def expand(pattern: str) -> list[str]:
    if any(ch in pattern for ch in "*?["):
        files = sorted(globbing.glob(pattern))
        if not files:
            raise AnalysisError(f"no file matches {pattern}")
    else:
        if not Path(pattern).is_file():
            raise AnalysisError(f"file not found: {pattern}")
        files = [pattern]
    kinds = {"parquet" if Path(f).suffix.lower() in (".parquet", ".pq") else "csv" for f in files}
    if len(kinds) > 1:
        raise AnalysisError("the files mix CSV and Parquet; analyse one kind at a time")
    return files


def _reader(files: Sequence[str], *, varchar: bool) -> str:
    listed = "[" + ", ".join(_quote(f) for f in files) + "]"
    if Path(files[0]).suffix.lower() in (".parquet", ".pq"):
        return f"read_parquet({listed}, filename = true)"
    return (
        f"read_csv({listed}, header = true, all_varchar = {str(varchar).lower()}, filename = true, "
        "union_by_name = true)"
    )


def _check_header(path: str, names: list[str]) -> None:
    """DuckDB's CSV sniffer can take a data row for the header when rows have different numbers of
    fields; the header it reports must be the file's first line."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    strange = [n for n in names if n not in first]
    if strange:
        raise AnalysisError(
            f"cannot read the header of {path}: the columns found ({', '.join(names)}) are not its first "
            "line; do all rows have the same number of fields?"
        )


def _present(col: str) -> str:
    return f"({col} IS NOT NULL AND trim(CAST({col} AS VARCHAR)) <> '')"


def load_file(con: Any, pattern: str, options: AnalyzeOptions, *, fx: FxRates | None = None) -> SourceInfo:
    """Parse ``pattern`` into ``patron_tx`` in the DuckDB backend ``con``."""
    files = expand(pattern)
    tz = check_timezone(options.timezone or "UTC")
    duck = con.con
    _exec(duck, f"SET TimeZone = {_quote(tz)}")
    reader = _reader(files, varchar=True)
    try:
        described = duck.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot read {pattern}: {str(exc).splitlines()[0]}") from exc
    names = [row[0] for row in described]
    types = {row[0]: str(row[1]).upper() for row in described}
    _check_header(files[0], [n for n in names if n != "filename"])
    cols = options.columns
    wanted: list[tuple[str, str | None]] = [
        ("--customer-col", cols.customer),
        ("--date-col", cols.date),
        ("--amount-col", cols.amount),
        ("--order-col", cols.order),
        ("--market-col", cols.market),
        ("--currency-col", cols.currency),
        ("--product-col", cols.product),
        ("--quantity-col", cols.quantity),
        ("--referred-col", cols.referred),
    ]
    available = [n for n in names if n != "filename"]
    for flag, name in wanted:
        if name is not None and name not in names:
            raise AnalysisError(
                f"missing column {name!r} (the file has: {', '.join(available)}); name it with {flag}"
            )

    def c(name: str) -> str:
        return _ident(name)

    text = "nullif(trim(CAST({0} AS VARCHAR)), '')"
    select = [
        f"{text.format(c(cols.customer))} AS customer_id",
        # a DATE column is already a local date (through TIMESTAMPTZ in the session's zone and back
        # would give the same date, at a cost per row)
        (
            f"{c(cols.date)} AS d"
            if types.get(cols.date) == "DATE"
            else f"CAST(try_cast({c(cols.date)} AS TIMESTAMPTZ) AS DATE) AS d"
        ),
        f"try_cast({c(cols.amount)} AS DECIMAL(18, 4)) AS amount",
        (f"{text.format(c(cols.order))}" if cols.order else "CAST(NULL AS VARCHAR)") + " AS order_id",
        (f"upper({text.format(c(cols.currency))})" if cols.currency else "CAST(NULL AS VARCHAR)")
        + " AS currency",
        (f"{text.format(c(cols.market))}" if cols.market else "CAST(NULL AS VARCHAR)") + " AS market",
        (f"{text.format(c(cols.product))}" if cols.product else "CAST(NULL AS VARCHAR)") + " AS product",
        (
            f"try_cast({c(cols.quantity)} AS DECIMAL(18, 4))"
            if cols.quantity
            else "CAST(NULL AS DECIMAL(18, 4))"
        )
        + " AS quantity",
        (f"{_present(c(cols.quantity))}" if cols.quantity else "false") + " AS q_present",
        (
            f"coalesce(lower(trim(CAST({c(cols.referred)} AS VARCHAR))) NOT IN "
            "('', '0', 'false', 'no', 'n', 'f'), false)"
            if cols.referred
            else "CAST(NULL AS BOOLEAN)"
        )
        + " AS referred",
        "filename AS _file",
    ]
    # one problem per row (the first that applies), in column order
    checks: list[tuple[str, str, str]] = [
        ("customer_id IS NULL", cols.customer, PROBLEM_CUSTOMER),
        ("d IS NULL", cols.date, PROBLEM_DATE),
        ("amount IS NULL", cols.amount, PROBLEM_AMOUNT),
    ]
    if cols.order:
        checks.append(("order_id IS NULL", cols.order, PROBLEM_ORDER))
    else:
        checks.append(("amount < 0", cols.amount, PROBLEM_REFUND))
    if cols.currency:
        checks.append(("currency IS NULL", cols.currency, PROBLEM_CURRENCY))
    if cols.quantity:
        checks.append(("(q_present AND quantity IS NULL)", cols.quantity, PROBLEM_QUANTITY))
    case = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(checks)) + " END"
    try:
        _exec(
            duck,
            f"CREATE OR REPLACE TABLE stage AS SELECT *, {case} AS problem "
            f"FROM (SELECT {', '.join(select)} FROM {reader})",
        )
    except duckdb.Error as exc:  # a malformed file: DuckDB's own message names the line
        raise AnalysisError(f"cannot read {pattern}: {str(exc).strip()}") from exc
    checks_all = list(checks)

    currency: str | None = None
    if cols.currency:
        found = [
            r[0]
            for r in duck.execute(
                "SELECT DISTINCT currency FROM stage WHERE problem IS NULL ORDER BY 1"
            ).fetchall()
        ]
        if len(found) == 1:
            currency = found[0]
        elif found:
            if fx is None:
                raise AnalysisError(
                    f"the amounts are in several currencies ({', '.join(found)}) and there are no FX "
                    "rates: set PATRON_DATABASE_URL to a Patron database with rates, or split the file"
                )
            currency = fx.target
            _convert(duck, fx, len(checks_all), [cur for cur in found if cur != fx.target])
            checks_all.append(("", cols.currency, PROBLEM_FX))
    if cols.order and _exec(duck, "SELECT count(*) FROM stage WHERE problem IS NULL AND amount < 0")[0][0]:
        # refunds are netted against their order; an order whose net total is negative is bad
        _exec(
            duck,
            f"""UPDATE stage SET problem = {len(checks_all)} WHERE problem IS NULL AND amount < 0 AND
            (customer_id, order_id) IN (SELECT customer_id, order_id FROM stage WHERE problem IS NULL
                                        GROUP BY ALL HAVING sum(amount) < 0)""",
        )
    if cols.order:
        checks_all.append(("", cols.amount, PROBLEM_REFUND_EXCEEDS))

    counts = dict(
        duck.execute("SELECT problem, count(*) FROM stage WHERE problem IS NOT NULL GROUP BY 1").fetchall()
    )
    skipped = int(sum(counts.values()))
    examples: tuple[BadRow, ...] = ()
    if skipped:
        examples = _examples(duck, files, checks_all, multi=len(files) > 1)
        if options.on_bad_rows == "fail":
            more = f" (and {skipped - len(examples)} more)" if skipped > len(examples) else ""
            lines = "\n".join("  " + e.describe() for e in examples)
            raise AnalysisError(
                f"{skipped} bad row{'s' if skipped != 1 else ''}{more}:\n{lines}\n"
                "fix them, or pass --on-bad-rows skip to leave them out"
            )
    by_problem = {checks_all[int(k)][2]: int(v) for k, v in sorted(counts.items())}
    order_expr = "order_id" if cols.order else "CAST(rowid AS VARCHAR)"
    _exec(
        duck,
        # a view: the parsed rows are stored once (the orders are aggregated and kept once later)
        f"""CREATE OR REPLACE VIEW {TX_TABLE} AS SELECT customer_id, {order_expr} AS order_id,
        CAST(date_diff('day', DATE '1970-01-01', d) AS INTEGER) AS day, amount, market, product,
        quantity, referred, false AS line_only FROM stage WHERE problem IS NULL""",
    )
    return _info(duck, skipped, by_problem, currency, options, examples, linked=cols.order is not None)


def _convert(duck: Any, fx: FxRates, problem: int, currencies: list[str]) -> None:
    rows = [(cur, on, rate) for cur, on, rate in fx.rates if cur in currencies]
    _exec(duck, "CREATE OR REPLACE TEMP TABLE fx (currency VARCHAR, valid_on DATE, rate DECIMAL(24, 10))")
    if rows:
        for row in rows:
            _exec(duck, "INSERT INTO fx VALUES (?, ?, ?)", [row[0], row[1], str(row[2])])
    _exec(
        duck,
        f"""UPDATE stage SET amount = CAST(stage.amount * m.rate AS DECIMAL(18, 4)) FROM (
              SELECT s.rowid AS rid, f.rate FROM stage s ASOF JOIN fx f
              ON f.currency = s.currency AND s.d >= f.valid_on
              WHERE s.problem IS NULL AND s.currency <> {_quote(fx.target)}) m
            WHERE stage.rowid = m.rid""",
    )
    _exec(
        duck,
        f"""UPDATE stage SET problem = {problem} WHERE problem IS NULL AND currency <> {_quote(fx.target)}
            AND rowid NOT IN (SELECT s.rowid FROM stage s ASOF JOIN fx f
                              ON f.currency = s.currency AND s.d >= f.valid_on)""",
    )


def _examples(
    duck: Any, files: list[str], checks: list[tuple[str, str, str]], *, multi: bool
) -> tuple[BadRow, ...]:
    """The first bad rows with their raw values (the file is re-read only on this error path)."""
    bad = duck.execute(
        "SELECT rowid, problem, _file FROM stage WHERE problem IS NOT NULL "
        f"ORDER BY rowid LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    starts = dict(duck.execute("SELECT _file, min(rowid) FROM stage GROUP BY 1").fetchall())
    _exec(duck, f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT * FROM {_reader(files, varchar=True)}")
    out: list[BadRow] = []
    for rowid, problem, file in bad:
        column = checks[int(problem)][1]
        found = _exec(
            duck, f"SELECT CAST({_ident(column)} AS VARCHAR) FROM raw_rows WHERE rowid = ?", [rowid]
        )
        value = found[0] if found else None
        out.append(
            BadRow(
                row=int(rowid) - int(starts[file]) + 1,
                column=column,
                value=None if value is None else value[0],
                problem=checks[int(problem)][2],
                file=Path(file).name if multi else None,
            )
        )
    _exec(duck, "DROP TABLE raw_rows")
    return tuple(out)


def _info(
    duck: Any,
    skipped: int,
    by_problem: dict[str, int],
    currency: str | None,
    options: AnalyzeOptions,
    examples: tuple[BadRow, ...],
    *,
    linked: bool = True,
) -> SourceInfo:
    n, lo, hi, markets, products, referred = _exec(
        duck,
        f"""SELECT count(*) FILTER (WHERE NOT line_only), min(day), max(day), count(market),
            count(product), count(referred)
            FROM {TX_TABLE}""",
    )[0]
    if not n:
        raise AnalysisError("no usable transactions in the input")
    return SourceInfo(
        transactions=int(n),
        skipped=skipped,
        skipped_by_problem=by_problem,
        currency=currency,
        first_day=from_day_number(lo),
        last_day=from_day_number(hi),
        has_market=bool(markets),
        has_product=bool(products),
        has_referred=bool(referred),
        orders_linked=linked,
        examples=examples,
    )


def load_arrow(
    con: Any, table: pa.Table, options: AnalyzeOptions, currency: str, *, views: pa.Table | None = None
) -> SourceInfo:
    """Load already-normalised rows (from the database source) into ``patron_tx`` in DuckDB, and
    page views (customer_id, day, product) into ``patron_views``."""
    duck = con.con
    if views is not None:
        duck.register("incoming_views", views)
        _exec(
            duck,
            f"""CREATE OR REPLACE TABLE {VIEWS_TABLE} AS SELECT CAST(customer_id AS VARCHAR) AS customer_id,
            CAST(day AS INTEGER) AS day, CAST(product AS VARCHAR) AS product FROM incoming_views""",
        )
        duck.unregister("incoming_views")
    duck.register("incoming", table)
    _exec(
        duck,
        f"""CREATE OR REPLACE TABLE {TX_TABLE} AS SELECT CAST(customer_id AS VARCHAR) AS customer_id,
        CAST(order_id AS VARCHAR) AS order_id, CAST(day AS INTEGER) AS day,
        CAST(amount AS DECIMAL(18, 4)) AS amount, CAST(market AS VARCHAR) AS market,
        CAST(product AS VARCHAR) AS product, CAST(quantity AS DECIMAL(18, 4)) AS quantity,
        CAST(referred AS BOOLEAN) AS referred, CAST(line_only AS BOOLEAN) AS line_only FROM incoming""",
    )
    duck.unregister("incoming")
    info = _info(duck, 0, {}, currency, options, ())
    return replace(info, has_views=views is not None)
