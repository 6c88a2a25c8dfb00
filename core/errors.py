"""The exceptions the CLI turns into a one-line error and a documented exit code."""

#: Exit codes of ``r2l`` (the README's table): 0 all done, 1 bad input or a whole-run error,
#: 2 usage error (click's), 3 finished but some rows failed or some inputs were unreadable.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


class R2LError(Exception):
    """A whole-run error caused by input or configuration; its message is shown to the user as is."""

    exit_code = EXIT_ERROR


class NothingUsable(R2LError):
    """A step finished, but every row failed, so the next step has nothing to work on (exit 3)."""

    exit_code = EXIT_PARTIAL
