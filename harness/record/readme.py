"""Keep the documentation's column table (docs/reference/columns.md) generated from the schema:
`python -m harness.record.readme` rewrites it; a test keeps it in sync."""
from __future__ import annotations

from pathlib import Path

from harness.record.schema import markdown_table

README = Path(__file__).resolve().parents[2] / "docs" / "reference" / "columns.md"
START, END = "<!-- columns:start -->", "<!-- columns:end -->"


def render(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
