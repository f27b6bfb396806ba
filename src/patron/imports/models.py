"""Import batches, what each batch did to which record (for undo) and its rejected rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.core.db import Base, created_at_column, id_column


class ImportBatch(Base):
    """One run of an import (a CLI command or an API upload job).

    ``status``: ``queued`` → ``running`` → ``completed`` (every row handled; see ``rows_rejected``)
    or ``failed`` (a fatal error: ``error`` says why; the chunks committed before it stay and can be
    undone); ``completed``/``failed`` → ``undone`` after an undo."""

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_created", "created_at", "id"),)

    id: Mapped[str] = id_column()
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(500))
    file_format: Mapped[str | None] = mapped_column(String(10), default=None)
    file_size: Mapped[int | None] = mapped_column(Integer, default=None)
    encoding: Mapped[str | None] = mapped_column(String(30), default=None)
    delimiter: Mapped[str | None] = mapped_column(String(4), default=None)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    dry_run: Mapped[bool] = mapped_column(default=False)
    live: Mapped[bool] = mapped_column(default=False)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    columns: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int | None] = mapped_column(Integer, default=None)  # per mille, when known
    error: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    actor_label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)  # last chunk committed
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_by: Mapped[str | None] = mapped_column(String(100), default=None)


class ImportRecord(Base):
    """A record the batch created or changed: created ones are deleted by an undo, updated ones are
    restored from ``before`` (the domain's own snapshot)."""

    __tablename__ = "import_records"
    __table_args__ = (
        UniqueConstraint("batch_id", "entity_type", "entity_id"),
        Index("ix_import_records_entity", "entity_type", "entity_id"),
    )

    id: Mapped[str] = id_column()
    batch_id: Mapped[str] = mapped_column(String(36), ForeignKey("import_batches.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(10))  # created | updated
    line: Mapped[int] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class ImportReject(Base):
    """A rejected row: its line (the header is line 1), its key and why, with the row as read."""

    __tablename__ = "import_rejects"
    __table_args__ = (Index("ix_import_rejects_batch_line", "batch_id", "line"),)

    id: Mapped[str] = id_column()
    batch_id: Mapped[str] = mapped_column(String(36), ForeignKey("import_batches.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
