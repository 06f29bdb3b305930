"""User-facing errors.

A :class:`SeqgenError` is a problem with the user's input (a bad file, a bad
config key, a missing run directory).  The CLI prints its message on one line
and exits non-zero; tracebacks are shown only with ``--debug``.
"""


class SeqgenError(Exception):
    """An error the user can fix; the message says what and where."""


class ConfigError(SeqgenError):
    """A bad configuration file, key or value."""


class AudioError(SeqgenError):
    """An audio file that cannot be used (corrupt, empty, not audio, NaN...)."""


class DataError(SeqgenError):
    """A prepared data directory that is missing or inconsistent."""
