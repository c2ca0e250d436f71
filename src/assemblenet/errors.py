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


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup (model preset, dataset, official structure, strategy, device) of a name that is not
    there. One line naming the config key (when the lookup has one), the name and the choices. A ``KeyError``
    too, so that callers that catch a missing key still do."""

    def __init__(self, what: str, name: object, choices, *, key: str | None = None) -> None:
        self.what, self.name, self.choices, self.key = what, name, list(choices), key
        where = f"key '{key}': " if key else ""
        super().__init__(f"{where}unknown {what} {name!r}; choices: {', '.join(map(str, self.choices))}")

    def with_key(self, key: str) -> "UnknownNameError":
        """The same error naming the config key the name came from."""
        return UnknownNameError(self.what, self.name, self.choices, key=key)

    __str__ = Exception.__str__  # KeyError's would quote the message
