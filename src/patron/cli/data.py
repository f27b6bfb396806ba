"""``patron import``: customers, orders, products and subscriptions from CSV, Excel or Parquet, plus
``undo``, ``list`` and ``show`` for batches.

Exit codes: 0 when every row was accepted, 3 when some rows were rejected (they are written to
``FILE.rejected.csv`` or ``--rejects`` and named on the terminal), 1 on a fatal error (unreadable
file, unknown columns with no mapping …). Never prompts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from patron.cli.common import console, fail, get_db, out, unit_of_work
from patron.cli.main import app
from patron.core.audit import Actor
from patron.core.errors import PatronError
from patron.imports import (
    DEFAULT_CHUNK_SIZE,
    BatchStatus,
    DecimalMode,
    ImportFileError,
    ImportKind,
    ImportOptions,
    ImportReport,
    RejectedRow,
    RejectsWriter,
    get_batch,
    iter_rejects,
    list_batches,
    parse_mapping,
    run_import,
    undo_batch,
)
from patron.imports.rejects import default_rejects_path

import_app = typer.Typer(
    help="Import customers, orders, products or subscriptions from CSV, Excel (.xlsx) or Parquet.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_REJECTED = 3
CLI_ACTOR = Actor("system", None, "cli")

FileArg = Annotated[Path, typer.Argument(help="CSV (.csv/.txt/.tsv), Excel (.xlsx) or Parquet file")]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        "-m",
        help="COLUMN=FIELD (repeatable); COLUMN= skips a column; on customers "
        "COLUMN=attributes.NAME keeps it as a custom attribute",
    ),
]
EncodingOpt = Annotated[
    str | None, typer.Option(help="text encoding (default: detected; e.g. cp1258, tis_620, cp1250, utf-8)")
]
DelimiterOpt = Annotated[str | None, typer.Option(help="CSV delimiter: ',', ';', 'tab' (default: detected)")]
DecimalOpt = Annotated[
    bool | None,
    typer.Option(
        "--decimal-comma/--decimal-point",
        help="numbers like 1.234,50 (comma) or 1,234.50 (point); default: detected from the file",
    ),
]
DateFormatOpt = Annotated[
    str | None,
    typer.Option(
        help="date format: a strptime pattern (%d/%m/%Y) or "
        "iso, dmy, mdy, ymd (default: ISO, dd/mm/yyyy, "
        "dd.mm.yyyy, yyyy.mm.dd and Excel serials)"
    ),
]
TimeZoneOpt = Annotated[
    str | None, typer.Option(help="zone of timestamps without an offset (default: the business time zone)")
]
SheetOpt = Annotated[str | None, typer.Option(help="Excel sheet name (default: the first sheet)")]
LiveOpt = Annotated[
    bool,
    typer.Option("--live", help="emit domain events (messages, points…); imports are backfill by default"),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="validate and report; write nothing to the database")
]
RejectsOpt = Annotated[
    Path | None, typer.Option(help="where to write rejected rows (default: FILE.rejected.csv)")
]
ChunkOpt = Annotated[int, typer.Option(min=1, max=50_000, help="rows per transaction")]


class CliListener:
    """Progress on the terminal (a rich bar) or periodic plain lines without one; rejected rows are
    named as they come and written to the rejects file."""

    def __init__(self, writer: RejectsWriter, *, interval: float = 5.0) -> None:
        self.writer = writer
        self.interval = interval
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0
        self._unit = "rows"
        self._total: int | None = None

    def opened(self, report: ImportReport, total_units: int | None, unit: str) -> None:
        delimiter = {"\t": "tab", None: None}.get(report.delimiter, report.delimiter)
        details = ", ".join(str(x) for x in (report.file_format, report.encoding, delimiter) if x)
        console.print(
            f"importing {report.kind.value} from {report.file_name} ({details})", markup=False, soft_wrap=True
        )
        self.writer.set_columns(list(report.columns), report.delimiter)
        self._unit, self._total = unit, total_units
        self._last = time.monotonic()
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rows]} rows"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(report.kind.value, total=total_units, rows=0)

    def chunk_done(self, report: ImportReport, done_units: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done_units, rows=report.rows_total)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            share = f" ({report.progress:.0%})" if report.progress is not None else ""
            console.print(
                f"… {report.rows_total} rows{share}: {report.rows_accepted} accepted, "
                f"{report.rows_rejected} rejected",
                highlight=False,
                soft_wrap=True,
            )

    def rejected(self, row: RejectedRow) -> None:
        self.writer.write(row)
        key = f" ({row.key})" if row.key else ""
        if self._progress is not None:
            self._progress.console.print(
                f"line {row.line}{key}: {row.message}", markup=False, highlight=False, soft_wrap=True
            )
        else:
            out.print(f"line {row.line}{key}: {row.message}", markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _run(
    kind: ImportKind,
    file: Path,
    *,
    mapping: list[str] | None,
    encoding: str | None,
    delimiter: str | None,
    decimal: bool | None,
    date_format: str | None,
    time_zone: str | None,
    sheet: str | None,
    live: bool,
    dry_run: bool,
    rejects: Path | None,
    chunk_size: int,
) -> None:
    try:
        options = ImportOptions(
            mapping=parse_mapping(mapping or []),
            encoding=encoding,
            delimiter=delimiter,
            decimal=DecimalMode.AUTO
            if decimal is None
            else DecimalMode.COMMA
            if decimal
            else DecimalMode.POINT,
            date_format=date_format,
            time_zone=time_zone,
            sheet=sheet,
            live=live,
            dry_run=dry_run,
            chunk_size=chunk_size,
        )
    except ImportFileError as exc:
        raise fail(exc.detail, EXIT_FATAL) from exc
    if not file.is_file():
        raise fail(f"no such file: {file}", EXIT_FATAL)
    writer = RejectsWriter(rejects or default_rejects_path(file))
    listener = CliListener(writer)
    try:
        report = run_import(get_db(), kind, file, options, listener=listener, actor=CLI_ACTOR)
    finally:
        listener.stop()
        writer.close()
    _summary(report, writer)
    if report.status is BatchStatus.FAILED:
        raise typer.Exit(EXIT_FATAL)
    raise typer.Exit(EXIT_REJECTED if report.rows_rejected else EXIT_OK)


def _summary(report: ImportReport, writer: RejectsWriter) -> None:
    would = "would be " if report.dry_run else ""
    if report.status is BatchStatus.FAILED:
        console.print(
            f"[red]error:[/red] {report.error} ({report.error_code})", highlight=False, soft_wrap=True
        )
        if report.rows_accepted and report.batch_id:
            console.print(
                f"{report.rows_accepted} rows were committed before the error; "
                f"undo them with: patron import undo {report.batch_id}",
                soft_wrap=True,
            )
    rate = report.rows_total / report.seconds if report.seconds > 0 else 0.0
    out.print(
        f"{'dry run: ' if report.dry_run else ''}{report.rows_total} rows: {report.rows_accepted} accepted, "
        f"{report.rows_rejected} rejected ({report.seconds:.1f} s, {rate:,.0f} rows/s)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"{report.kind.value}: {report.created} {would}created, {report.updated} {would}updated, "
        f"{report.unchanged} unchanged",
        highlight=False,
        soft_wrap=True,
    )
    if writer.count:
        out.print(f"rejected rows written to {writer.path}", highlight=False, soft_wrap=True)
    if report.batch_id and not report.dry_run:
        out.print(
            f"batch {report.batch_id} (undo: patron import undo {report.batch_id})",
            highlight=False,
            soft_wrap=True,
        )


def _command(kind: ImportKind) -> None:
    def command(
        file: FileArg,
        mapping: MapOpt = None,
        encoding: EncodingOpt = None,
        delimiter: DelimiterOpt = None,
        decimal: DecimalOpt = None,
        date_format: DateFormatOpt = None,
        time_zone: TimeZoneOpt = None,
        sheet: SheetOpt = None,
        live: LiveOpt = False,
        dry_run: DryRunOpt = False,
        rejects: RejectsOpt = None,
        chunk_size: ChunkOpt = DEFAULT_CHUNK_SIZE,
    ) -> None:
        _run(
            kind,
            file,
            mapping=mapping,
            encoding=encoding,
            delimiter=delimiter,
            decimal=decimal,
            date_format=date_format,
            time_zone=time_zone,
            sheet=sheet,
            live=live,
            dry_run=dry_run,
            rejects=rejects,
            chunk_size=chunk_size,
        )

    command.__doc__ = (
        f"Import {kind.value} from FILE (upsert by external id; re-running the same file changes nothing)."
    )
    import_app.command(kind.value)(command)


for _kind in ImportKind:
    _command(_kind)


@import_app.command("undo")
def undo(batch_id: Annotated[str, typer.Argument(help="the batch id printed by the import")]) -> None:
    """Undo a batch: delete what it created, restore what it updated."""
    with unit_of_work() as session:
        result = undo_batch(session, batch_id, actor=CLI_ACTOR)
    out.print(
        f"batch {batch_id} undone: {result.deleted} deleted, {result.restored} restored",
        highlight=False,
        soft_wrap=True,
    )


@import_app.command("list")
def list_command(limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """The latest import batches."""
    with unit_of_work(write=False) as session:
        batches = list_batches(session, limit=limit)
    for b in batches:
        out.print(
            f"{b.id}  {b.created_at:%Y-%m-%d %H:%M}  {b.kind:13} {b.status:9} rows {b.rows_total:>8}  "
            f"rejected {b.rows_rejected:>6}  {b.file_name}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


@import_app.command("show")
def show(
    batch_id: str,
    rejects: Annotated[bool, typer.Option("--rejects", help="also list the rejected rows")] = False,
) -> None:
    """A batch's status and counts (and its rejected rows)."""
    try:
        with unit_of_work(write=False) as session:
            b = get_batch(session, batch_id)
            out.print(
                f"{b.id} {b.kind} {b.status}{' (dry run)' if b.dry_run else ''}: {b.file_name}\n"
                f"rows {b.rows_total}: {b.rows_accepted} accepted, {b.rows_rejected} rejected; "
                f"created {b.created}, updated {b.updated}, unchanged {b.unchanged}",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
            if b.error:
                out.print(f"error: {b.error}", highlight=False, soft_wrap=True, markup=False)
            if rejects:
                for r in iter_rejects(session, batch_id):
                    key = f" ({r.external_id})" if r.external_id else ""
                    out.print(
                        f"line {r.line}{key}: {r.message}", highlight=False, soft_wrap=True, markup=False
                    )
    except PatronError as exc:  # pragma: no cover - unit_of_work already turns these into exits
        raise fail(exc.detail) from exc
