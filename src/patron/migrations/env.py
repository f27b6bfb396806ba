from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from patron.core.db import Base, make_engine
from patron.models import import_all_models

import_all_models()
config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # search side tables and indexes are created by hand-written migrations
    if type_ == "table" and name and (name.startswith("customer_search") or name.endswith("_fts")):
        return False
    return not (type_ == "index" and name and name.startswith("ixs_"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
run_migrations_online()
