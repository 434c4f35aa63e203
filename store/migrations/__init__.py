"""Schema migrations, one module per version (see store.migrate)."""
