"""Pareto frontiers: the configurations no other configuration beats on both axes."""
from __future__ import annotations

import pandas as pd


def pareto_mask(cost: pd.Series, quality: pd.Series) -> pd.Series:
    """True where no other point has cost <= and quality >= with at least one strictly better. Exact ties (same
    cost and quality) do not dominate each other: both stay on the frontier. NaN points are never on it."""
    c, q = cost.astype(float).to_numpy(), quality.astype(float).to_numpy()
    on = []
    for i in range(len(c)):
        if pd.isna(c[i]) or pd.isna(q[i]):
            on.append(False)
            continue
        dominated = any(
            (c[j] <= c[i] and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i]))
            for j in range(len(c)) if j != i and not (pd.isna(c[j]) or pd.isna(q[j])))
        on.append(not dominated)
    return pd.Series(on, index=cost.index)


def losses(df: pd.DataFrame, cost: str, quality: str, on: pd.Series) -> pd.Series:
    """For each point off the frontier, what it loses: the cheapest frontier point at least as good, and by how much."""
    front = df[on]
    notes = []
    for idx, row in df.iterrows():
        if on[idx] or pd.isna(row[cost]) or pd.isna(row[quality]):
            notes.append("" if on[idx] else "no cost or quality")
            continue
        better = front[front[quality] >= row[quality]].sort_values(cost)
        if better.empty:
            notes.append("dominated")
            continue
        b = better.iloc[0]
        notes.append(f"{b['config']} gives >= quality ({b[quality]:.4g} vs {row[quality]:.4g}) at "
                     f"{row[cost] / b[cost]:.2f}x less cost")
    return pd.Series(notes, index=df.index)
