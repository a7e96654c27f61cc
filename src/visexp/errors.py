"""The one exception type for mistakes a user can fix.

Anything raised as `VisexpError` is shown as a single line (`error: ...`) with a non-zero exit
status instead of a traceback: its message must name the bad value and what is allowed.
"""


class VisexpError(Exception):
    """A problem with the user's input or environment, explained in one line."""
