"""The one exception type the CLI turns into a one-line error and a non-zero exit."""


class R2LError(Exception):
    """A whole-run error caused by input or configuration; its message is shown to the user as is."""
