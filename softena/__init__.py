"""softena: a software ENA-like multiqueue network adapter."""

__version__ = "0.1.0"
