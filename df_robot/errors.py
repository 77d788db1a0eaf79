"""User-facing errors: the CLIs print these as one line, never as a traceback."""


class UserError(Exception):
    """A mistake in what the user asked for (a path, an option, a config value)."""
