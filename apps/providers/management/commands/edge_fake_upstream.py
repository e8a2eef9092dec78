"""`manage.py edge_fake_upstream`: the fake LLM upstream for `make run` and local trials.

It needs no database, so it can run before migrations or without Postgres at all.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.providers.fake_upstream.cli import add_arguments, knobs_from_options
from apps.providers.fake_upstream.rules import RuleError
from apps.providers.fake_upstream.server import FakeUpstream


class Command(BaseCommand):
    help = "Run the fake OpenAI, Azure OpenAI, Anthropic and Gemini upstream until SIGINT or SIGTERM."
    # No checks and no migration check: the fake must start even without a database.
    requires_system_checks = ()
    requires_migrations_checks = False

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            defaults = knobs_from_options(options)
        except RuleError as exc:
            raise CommandError(str(exc)) from exc
        upstream = FakeUpstream(defaults, seed=options["seed"])
        upstream.run_forever(options["host"], options["port"], announce=self._announce)

    def _announce(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
