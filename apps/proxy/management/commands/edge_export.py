"""`manage.py edge_export [--output FILE]`: the stored configuration as YAML that edge_apply accepts.

Provider API keys are replaced by ``${<NAME>_API_KEY}`` placeholders; nothing secret is written.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.proxy.config_file import export_config


class Command(BaseCommand):
    help = "Export providers, routing policies, models and tenants as YAML (API keys as ${VAR} placeholders)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="Write to this file instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = export_config()
        output: Path | None = options["output"]
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{output}: cannot write: {exc}") from exc
        self.stderr.write(f"wrote {output}")
