"""The one base of repotune's errors: a message that says what to do next. The CLI prints such an
error as one line (exit code 2) without importing the modules that raise them (and their libraries)."""


class RepotuneError(Exception):
    """An error the user can act on; its message names the input and the fix."""
