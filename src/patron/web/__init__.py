"""Web adapter: REST API, staff console and customer portal."""
