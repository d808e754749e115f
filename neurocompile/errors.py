"""The one exception type for problems a user can cause and fix."""


class NeurocompileError(Exception):
    """A user-facing error: the message names the problem and what would be accepted.

    The CLI prints it on one line and exits with status 2; nothing else is shown.
    """
