"""One base class for every error the engine raises about its inputs or its checks.

A rule's step catches `EngineError` and prints its message (which names the file, sheet, row, column or key,
the value and what was expected) instead of a traceback; anything else is a bug and keeps its traceback.
Subclasses also derive from the built-in class they replaced (ValueError, RuntimeError), so callers that catch
those keep working.
"""


class EngineError(Exception):
    """Bad input or a failed check, with a message written for the review author."""
