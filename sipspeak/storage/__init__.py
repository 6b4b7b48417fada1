"""SQLite storage (aiosqlite, WAL): migrations and repositories. The only place with SQL."""
