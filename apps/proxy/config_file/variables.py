"""``${VAR}`` in config values, filled from the environment so secrets stay out of the file.

``$${`` writes a literal ``${``. Only string values are expanded, after YAML parsing, so a variable's
value can never change the shape of the document (a key containing ``: `` or ``#`` stays one string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Digits may lead a name: edge_export derives names from provider slugs, which may start with one.
_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z0-9_]+)\}|\$\{")


class VariableError(ValueError):
    pass


def expand_variables(text: str, env: Mapping[str, str]) -> str:
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token == "$${":
            return "${"
        if name is None:
            raise VariableError("'${' must be followed by a variable name and '}' (write '$${' for a literal '${')")
        if name not in env:
            missing.append(name)
            return ""
        return env[name]

    expanded = _TOKEN.sub(replace, text)
    if missing:
        names = ", ".join(missing)
        plural = "s" if len(missing) > 1 else ""
        raise VariableError(f"environment variable{plural} {names} {'are' if plural else 'is'} not set")
    return expanded


def escape_variables(text: str) -> str:
    """The inverse of expansion for text that must come back unchanged (edge_export)."""
    return text.replace("${", "$${")
