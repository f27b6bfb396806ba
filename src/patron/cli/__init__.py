"""Command-line adapter: ``patron``."""
