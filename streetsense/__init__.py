"""Shared kernel of streetsense: wire contract, topics, settings, registry format, errors, CLI."""

__version__ = "0.1.0"
