"""The ``causalsre`` command line: one small module per command group."""
