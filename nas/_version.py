"""The package version: one place, below every layer (the tracker logs it with each run)."""

__version__ = "0.1.0"
