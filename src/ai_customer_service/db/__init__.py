"""Storage: engine, unit of work, portable column types and migrations (SQLite and PostgreSQL)."""
