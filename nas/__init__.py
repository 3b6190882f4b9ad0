"""nas: constrained neural-architecture search for small CNNs."""

__version__ = "0.1.0"
