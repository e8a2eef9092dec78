"""Running `edge_apply` and `edge_export` as an operator would, for tests of config as code."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command


def apply_text(directory: Path, text: str) -> str:
    """Write ``text`` as a config file in ``directory``, apply it, and return what the command printed."""
    path = directory / "config.yaml"
    path.write_text(text)
    out = StringIO()
    call_command("edge_apply", str(path), stdout=out)
    return out.getvalue()


def export() -> str:
    out = StringIO()
    call_command("edge_export", stdout=out)
    return out.getvalue()
