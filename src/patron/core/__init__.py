"""Core: settings, database, clock, money, i18n, errors, outbox, ids, pagination, lifecycle."""
