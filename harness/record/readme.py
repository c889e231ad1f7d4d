"""Keep the documentation's generated tables in sync with their sources: the column table (docs/reference/columns.md)
from the record schema and the key table (docs/reference/config.md) from the configuration's dataclasses.
`python -m harness.record.readme` rewrites both; a test keeps each in sync."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
README = DOCS / "columns.md"
CONFIG_DOC = DOCS / "config.md"


def _columns() -> str:
    from harness.record.schema import markdown_table

    return markdown_table()


def _side_tables() -> str:
    from harness.record.tables import BY_INTERNAL_KEY

    return "\n\n".join(f"`<csv stem>.{t.kind}.csv`, the {t.what}:\n\n{t.markdown_table()}"
                         for t in BY_INTERNAL_KEY.values())


def _config() -> str:
    from harness.config.schema import describe

    return describe()


TABLES: dict[Path, tuple[tuple[str, Callable[[], str]], ...]] = {
    README: (("columns", _columns), ("side-tables", _side_tables)), CONFIG_DOC: (("config", _config),)}


def render(text: str, path: Path = README) -> str:
    for marker, table in TABLES[path]:
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{table()}\n{end}{tail}"
    return text


if __name__ == "__main__":
    for doc in TABLES:
        doc.write_text(render(doc.read_text(), doc))
