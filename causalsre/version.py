"""The package version, in a module of its own so that anything may import it without importing the package's
lazy API (``causalsre/__init__.py``), which would make an import cycle."""

__version__ = "0.1.0"
