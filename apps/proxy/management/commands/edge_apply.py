"""`manage.py edge_apply FILE.yaml [--check]`: upsert providers, policies, models and tenants from a file.

All or nothing: every problem in the file is reported (each naming its entry and field) and nothing
is written unless the whole file is valid. Secrets are never printed.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.proxy.config_file import ConfigError, YamlFileError, apply_config, read_yaml


class Command(BaseCommand):
    help = "Apply a configuration file (providers, routing_policies, models, tenants) in one transaction."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="YAML file; ${VAR} in values is read from the environment.")
        parser.add_argument("--check", action="store_true", help="Validate against the database; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            report = apply_config(data=read_yaml(path), env=os.environ, write=not options["check"])
        except YamlFileError as exc:
            raise CommandError(str(exc)) from exc
        except ConfigError as exc:
            raise CommandError(exc.render(str(path))) from exc
        for line in report.lines():
            self.stdout.write(line)
        if not report.written:
            self.stdout.write(f"check passed: {path} is valid; nothing was written")
