"""The progress bar every long job shows (training, encoding, evaluation)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(enabled: bool = True, label: str = "training", console=None) -> Progress:
    """Steps done, loss and rate (fields `loss` and `sps` of the task), then its description."""
    return Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}  {task.fields[sps]:.1f} steps/s  {task.description}"),
                    TimeRemainingColumn(), disable=not enabled, console=console)


def count_bar(label: str, console=None) -> Progress:
    """Items done and a free note (e.g. 'success 7/9'): field `note` of the task."""
    return Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console)
