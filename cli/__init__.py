"""The ``r2l`` command line."""
