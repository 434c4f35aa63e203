"""All SQL of streetsense: schema and migrations, bulk writes, reads that return arrays."""
