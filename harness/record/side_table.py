"""A long side table beside the results CSV (`<stem>.<kind>.csv`): several lines per run, keyed by `run_id`, for
results whose count varies by run (the load curve's levels, LoadGen's per-profile Server searches), so that a new
level or SLO profile needs no new column in the row. Appended whole per run under the file's lock, before the run's
row; a results CSV without the file (older sweeps) simply has none."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import SideTableError
from harness.record.store import append_locked


@dataclass(frozen=True)
class SideTable:
    kind: str  # the file is <stem>.<kind>.csv
    what: str  # "load-curve side table": how messages name it
    columns: tuple[tuple[str, str, str], ...]  # (name, unit, meaning); run_id first
    required: tuple[str, ...]  # columns a line must fill to count (a torn line lacks them)
    text: tuple[str, ...] = ("run_id",)  # columns that hold text; the others hold numbers

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.columns)

    def path(self, csv_path: str | Path) -> Path:
        from harness.record import layout

        return layout.side_table(csv_path, self.kind)

    def append(self, csv_path: str | Path, run_id: str, lines: list[dict]) -> Path | None:
        """Append every line of one run, all or nothing."""
        if not lines:
            return None
        path = self.path(csv_path)
        unknown = sorted({k for line in lines for k in line} - set(self.names))
        if unknown:
            raise KeyError(f"the {self.what} declares no column {unknown}")

        def text(exists: bool) -> str:
            # an older side table keeps its own header, so that nothing measured under it is lost
            columns = _header(path) if exists else self.names
            if not {"run_id", *self.required} <= set(columns) or not set(columns) <= set(self.names):
                raise SideTableError(f"{path} is not a {self.what} of this harness (columns {list(columns)[:4]})")
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            if not exists:
                w.writerow(columns)
            for line in lines:
                w.writerow(["" if (v := {**line, "run_id": run_id}.get(n)) is None else v for n in columns])
            return buf.getvalue()

        append_locked(path, text)
        return path

    def read(self, csv_path: str | Path, strict: bool = True):
        """Every line of every run as a DataFrame (empty, with the columns, when there is no side table). A side
        table that is a folder, empty, of another tool or with text in a number column raises SideTableError naming
        the file, the column and the row (strict); otherwise such lines are dropped, as are torn ones."""
        import pandas as pd

        path = self.path(csv_path)
        empty = pd.DataFrame(columns=list(self.names))
        if not path.exists():
            return empty
        if not path.is_file():
            raise SideTableError(f"{path}: the {self.what} is not a file")
        try:
            df = pd.read_csv(path, on_bad_lines="skip", dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise SideTableError(f"{path}: the {self.what} is empty (no header)") from None
        except UnicodeDecodeError as exc:
            raise SideTableError(f"{path}: byte {exc.start} is not UTF-8: not a {self.what} of this harness") from None
        missing = [c for c in ("run_id", *self.required) if c not in df.columns]
        if missing:
            raise SideTableError(f"{path}: not a {self.what} of this harness (no column {missing[0]!r}; "
                                 f"found {list(df.columns)[:5]})")
        df = df.reindex(columns=list(self.names), fill_value="")
        for c in self.names:
            if c in self.text:
                continue
            numbers = pd.to_numeric(df[c].replace("", None), errors="coerce")
            bad = df[c].ne("") & numbers.isna()
            if bad.any() and strict:
                row = int(bad.idxmax())
                raise SideTableError(f"{path}: row {row + 2} (run {df.at[row, 'run_id']!r}), column {c!r}: "
                                     f"{df.at[row, c]!r} is not a number")
            df[c] = numbers
        filled = pd.concat([df[c].ne("") if c in self.text else df[c].notna() for c in self.required], axis=1)
        return df[filled.all(axis=1)]

    def by_run(self, csv_path: str | Path) -> dict[str, list[dict]]:
        """The side table's lines as plain dicts per run (for merge and upgrade)."""
        df = self.read(csv_path, strict=False)
        return {rid: [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items() if k != "run_id"}
                      for r in g.to_dict("records")] for rid, g in df.groupby("run_id")}

    def markdown_table(self) -> str:
        lines = ["| column | unit | meaning |", "|---|---|---|"]
        return "\n".join(lines + [f"| `{n}` | {u} | {m} |" for n, u, m in self.columns])


def _header(path: Path) -> tuple[str, ...]:
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f)))
