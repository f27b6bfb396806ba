"""Worker adapter: dispatches outbox events and runs scheduled jobs."""
