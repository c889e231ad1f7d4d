"""LoadGen's Server search per run and SLO profile: one line per (run, profile), beside the results CSV as
`<stem>.loadgen.csv` (harness/record/side_table.py), so that a new SLO profile is one YAML in conf/slo/ and no new
column. Rows written before this table held the two profiles of their day as `loadgen_<profile>_<stat>` columns of
the row (harness/record/schema.py RETIRED); they stay readable, and `python -m harness.record.upgrade` moves them here."""
from __future__ import annotations

from pathlib import Path

from harness.record.schema import LOADGEN_PROFILE_COLUMNS as PROFILE_COLUMNS, RETIRED
from harness.record.side_table import SideTable

PROFILES = SideTable("loadgen", "LoadGen profile side table", PROFILE_COLUMNS, required=("profile", "runs"),
                     text=("run_id", "profile"))
STATS = tuple(c[0] for c in PROFILE_COLUMNS[2:])


def wide_name(profile: str, stat: str) -> str:
    """The name the analysis gives a profile's figure in its in-memory table (and the row's column once had)."""
    return f"loadgen_{profile}_{stat}"


def from_row(row: dict) -> list[dict]:
    """A row of the older layout: its retired loadgen_<profile>_* values as side-table lines (none when empty)."""
    lines: dict[str, dict] = {}
    for col, (profile, stat) in RETIRED.items():
        value = row.get(col)
        if value not in (None, ""):
            lines.setdefault(profile, {"profile": profile})[stat] = value
    return [line for line in lines.values() if line.get("runs") not in (None, "")]


def move_retired(csv_path: str | Path, rows: list[dict]) -> int:
    """Append the retired columns' values of `rows` to the side table, each (run, profile) the table lacks; returns
    how many lines were added (a second upgrade adds none)."""
    have = {(rid, line.get("profile")) for rid, lines in PROFILES.by_run(csv_path).items() for line in lines}
    added = 0
    for r in rows:
        lines = [line for line in from_row(r) if (r["run_id"], line["profile"]) not in have]
        if lines:
            PROFILES.append(csv_path, r["run_id"], lines)
            added += len(lines)
    return added


def read_profiles(csv_path: str | Path, rows=None):
    """Every run's per-profile search as a DataFrame: the side table's lines, and, for rows of the older layout
    (`rows`: the results' DataFrame), their retired columns; a run's line in the side table wins."""
    import pandas as pd

    df = PROFILES.read(csv_path)
    if rows is None or not any(c in rows for c in RETIRED):
        return df
    old = [{"run_id": r["run_id"], **line} for r in rows.to_dict("records") for line in from_row(r)]
    if not old:
        return df
    old_df = pd.DataFrame(old).reindex(columns=list(PROFILES.names))
    for c in STATS:
        old_df[c] = pd.to_numeric(old_df[c], errors="coerce")
    have = set(zip(df["run_id"], df["profile"]))
    old_df = old_df[[(a, b) not in have for a, b in zip(old_df["run_id"], old_df["profile"])]]
    return pd.concat([df, old_df], ignore_index=True) if len(df) else old_df.reset_index(drop=True)


def wide(profiles, index_run_ids) -> "pd.DataFrame":  # noqa: F821
    """The per-profile lines as one numeric column per (profile, statistic), aligned to `index_run_ids`: the
    analysis judges every SLO profile from the same table, whichever profiles were searched."""
    import pandas as pd

    out = {}
    for (profile, stat) in sorted({(p, s) for p in profiles["profile"].unique() for s in STATS}):
        got = profiles[profiles["profile"] == profile].drop_duplicates("run_id", keep="last").set_index("run_id")[stat]
        out[wide_name(profile, stat)] = pd.to_numeric(pd.Series(list(index_run_ids)).map(got), errors="coerce").values
    return pd.DataFrame(out)
