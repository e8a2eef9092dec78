"""README's table of config file fields states what the code does: every field the parser takes is
documented, and each documented default and lower bound is the model field's (where both come from)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from apps.proxy.config_file.shapes import DOCUMENTED
from edge_project.model_fields import model_field

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = re.compile(r"\*\*(.+)\*\*")
CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    section: str
    field: str
    type: str
    default: str  # the cell as written


def documented_rows(text: str) -> list[Row]:
    """The field rows of the table under "## Configuration as code", with their section headings."""
    body = text.split("## Configuration as code", 1)[1].split("\n## ", 1)[0]
    rows, section = [], ""
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith(("| field |", "|---")):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if heading := HEADING.fullmatch(cells[0]):
            section = heading.group(1)
            continue
        names, defaults = CODE.findall(cells[0]), _literals(cells[2])
        for index, name in enumerate(names):  # `a`, `b`, `c` | `0.4`, `0.4`, `0.2`: one row, three fields
            default = defaults[index] if defaults and len(defaults) == len(names) else cells[2]
            rows.append(Row(section, name, cells[1], default))
    return rows


def _literals(cell: str) -> list[str] | None:
    """`2` → ["`2`"]; `0.4`, `0.4`, `0.2` → three; prose (even with code in it) → None."""
    if CODE.sub("", cell).replace(",", "").strip():
        return None
    return [f"`{value}`" for value in CODE.findall(cell)]


ROWS = documented_rows(README.read_text())


def stored_in_a_column(row: Row) -> bool:
    """Rows of fields with a model column of their own: lists, secrets, references and sub-entries
    have none, and the parser itself says what their absence means."""
    shape = DOCUMENTED.get(row.section)
    column = shape.column(row.field) if shape else None
    return shape is not None and column is not None and not model_field(shape.model, column).is_relation


def row_id(row: Row) -> str:
    return f"{row.section}.{row.field}"


def test_the_table_documents_exactly_the_fields_each_entry_takes():
    documented = {section: [row.field for row in ROWS if row.section == section] for section in DOCUMENTED}

    assert documented == {section: list(shape.fields) for section, shape in DOCUMENTED.items()}


@pytest.mark.parametrize("row", [row for row in ROWS if stored_in_a_column(row)], ids=row_id)
def test_each_documented_default_is_the_models(row: Row):
    shape = DOCUMENTED[row.section]
    field = model_field(shape.model, shape.stored(row.field))

    if row.default == "required":
        assert not field.has_default() and not field.null
    elif row.default.startswith("`") and row.default.endswith("`"):
        assert field.has_default() and yaml.safe_load(row.default.strip("`")) == field.get_default()
    else:  # prose, such as "unlimited" or "the input price": what a blank column means
        assert field.get_default() in (None, "")


@pytest.mark.parametrize("row", [row for row in ROWS if "≥" in row.type or "–" in row.type],
                         ids=row_id)
def test_each_documented_bound_is_the_models(row: Row):
    bounds = DOCUMENTED[row.section].bounds(row.field)
    if at_least := re.search(r"≥ (\S+)", row.type):
        assert bounds.minimum == float(at_least.group(1))
    else:
        between = re.search(r"(\S+)–(\S+)", row.type)
        assert between is not None
        assert (bounds.minimum, bounds.maximum) == (float(between.group(1)), float(between.group(2)))


def test_the_table_is_found():
    # A reading of README that found nothing would pass every test above.
    sections = {row.section for row in ROWS}

    assert sections == set(DOCUMENTED)
    assert len(ROWS) > 50
