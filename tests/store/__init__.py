"""Store tests: rollups, late data, export."""
