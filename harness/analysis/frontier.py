"""Pareto frontiers: the configurations no other configuration beats on both axes."""
from __future__ import annotations

import pandas as pd


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


def significant_mask(cost: pd.Series, quality: pd.Series, ci95: pd.Series, set_ci95: pd.Series | None = None,
                     model: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """A frontier that does not treat noise as a difference. Point i is dominated only when another point costs no
    more and is better by a significant margin: (q_j - q_i) > 1.96 * sqrt(se_i^2 + se_j^2), se = ci95 / 1.96, plus
    both full sets' own sampling error (set_ci95) when the two points are different models. Cheaper points whose
    quality is not significantly different are ties: returned as text beside the point, which stays on the frontier.
    Without intervals (ci95 all zero) this is the plain Pareto set, with ties only at exactly equal quality."""
    c, q = cost.astype(float).to_numpy(), quality.astype(float).to_numpy()
    se = (ci95.astype(float).fillna(0) / 1.96).to_numpy()
    sse = (set_ci95.astype(float).fillna(0) / 1.96).to_numpy() if set_ci95 is not None else 0 * se
    labels = list(model) if model is not None else [""] * len(c)
    names = list(cost.index)
    on, ties = [], []
    for i in range(len(c)):
        if pd.isna(c[i]) or pd.isna(q[i]):
            on.append(False)
            ties.append("")
            continue
        dominated, tied = False, []
        for j in range(len(c)):
            if j == i or pd.isna(c[j]) or pd.isna(q[j]) or c[j] > c[i]:
                continue
            var = se[i] ** 2 + se[j] ** 2 + (sse[i] ** 2 + sse[j] ** 2 if labels[i] != labels[j] else 0.0)
            margin = 1.96 * var ** 0.5
            if q[j] - q[i] > margin or (margin == 0 and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i])):
                dominated = True
                break
            if abs(q[j] - q[i]) <= margin and c[j] < c[i]:
                tied.append(names[j])
        on.append(not dominated)
        ties.append(tied)
    return pd.Series(on, index=cost.index, dtype=bool), pd.Series(ties, index=cost.index, dtype=object)
