"""Exception types shared by every layer.

Each error carries a message that names the offending file, field or value and says what was expected, so
that the CLI can print it as one line.
"""

from __future__ import annotations


class AssembleNetError(Exception):
    """Base class for all errors raised on bad user input."""


class GraphError(AssembleNetError, ValueError):
    """A malformed architecture graph."""


class ConfigError(AssembleNetError, ValueError):
    """A malformed config file or override."""


class DataError(AssembleNetError):
    """An unreadable video, frame folder or annotation file."""


class CheckpointError(AssembleNetError):
    """A missing or incompatible checkpoint."""


class FolderInUseError(AssembleNetError):
    """An output folder another running process holds (``fileio.hold_folder``)."""
