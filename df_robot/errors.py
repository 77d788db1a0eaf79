"""User-facing errors: the CLIs print these as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (a path, an option, a config value, a store)."""


def run_guarded(func, args) -> int:
    """Run a command; a user mistake becomes one line on stderr and exit code 1, Ctrl-C exit 130."""
    from rich.console import Console

    err = Console(stderr=True, emoji=False)
    try:
        return int(func(args) or 0)
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130



def run_command(build_parser, argv: list[str] | None = None) -> int:
    """A command line's entry: parse the arguments, then run the chosen subcommand guarded."""
    args = build_parser().parse_args(argv)
    return run_guarded(args.func, args)
