"""The warehouse engines: embedded DuckDB or a PostgreSQL server, chosen by one URL."""
