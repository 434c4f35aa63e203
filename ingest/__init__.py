"""Subscribe, decode, validate, batch, write, acknowledge."""
