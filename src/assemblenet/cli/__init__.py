"""The ``assemblenet`` command line."""
