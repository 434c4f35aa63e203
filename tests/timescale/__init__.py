"""TimescaleDB tests on PGlite (WebAssembly PostgreSQL with TimescaleDB) over the wire."""
