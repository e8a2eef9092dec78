"""`python -m apps.providers.fake_upstream --port 18080 ...`: the fake without Django,
as the benchmark runs it beside wrk.
"""

from __future__ import annotations

import argparse

from .cli import add_arguments, knobs_from_options
from .rules import RuleError
from .server import FakeUpstream


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m apps.providers.fake_upstream",
        description="A fake OpenAI, Azure OpenAI, Anthropic and Gemini upstream with fault knobs.")
    add_arguments(parser)
    options = vars(parser.parse_args())
    try:
        defaults = knobs_from_options(options)
    except RuleError as exc:
        parser.error(str(exc))
    FakeUpstream(defaults, seed=options["seed"]).run_forever(options["host"], options["port"])


if __name__ == "__main__":
    main()
