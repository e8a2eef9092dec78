"""The report page's tables as lists of cells, amounts as their exact ``data-exact`` values."""

from __future__ import annotations

from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._exact: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and (found.get("id") or "").startswith("table-"):
            self._table = str(found["id"]).removeprefix("table-")
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell, self._exact = [], None
        elif self._cell is not None and "data-exact" in found:
            self._exact = found["data-exact"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif self._table and tag in ("td", "th") and self._cell is not None:
            text = self._exact if self._exact is not None else "".join(self._cell).strip()
            self.tables[self._table][-1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    """{"rows": [[header...], [cells...], ..., [total...]], "periods": ..., "keys": ...}"""
    parser = _Tables()
    parser.feed(html)
    return parser.tables
