"""The one exception type users see as a one-line message (the CLI prints it, never a traceback)."""


class PosevidError(Exception):
    """A problem with the user's input or environment, with a message that names it."""
