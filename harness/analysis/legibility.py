"""Can a reader read this figure? Checked from matplotlib's own renderer extents, on every figure the analysis writes
(the tests on tiny CSVs, `make check-results` on the committed ones):

- no two pieces of text overlap (tick labels, axis labels, titles, annotations, legend entries);
- no legend covers a data point (legends go outside the data);
- every axis that shows ticks is labelled, with its unit in parentheses or a unit word;
- at most MAX_SERIES series in one panel (a series is an artist the plotting code marks with gid "series").

`problems(fig)` lists what fails, one line each, naming the panel."""
from __future__ import annotations

MAX_SERIES = 8
UNIT_WORDS = ("tok/s", "ms", "MiB", "MB", "GB", "US$", "$", "ratio", "nats", "accuracy", "sequences", "queries",
              "parameters", "%", "bits", "count", "QPS", "s)", "J")


def _visible(t) -> bool:
    return t.get_visible() and bool(t.get_text().strip())


def _texts(fig):
    """(artist, description) of every visible text of the figure."""
    out = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and _visible(sup):
        out.append((sup, "suptitle"))
    for t in fig.texts:
        if _visible(t) and t is not sup:
            out.append((t, f"figure text {t.get_text()[:30]!r}"))
    for leg in fig.legends:
        out += [(t, f"figure legend {t.get_text()[:30]!r}") for t in [*leg.get_texts(), leg.get_title()]
                if _visible(t)]
    for i, ax in enumerate(fig.axes):
        name = ax.get_title() or f"panel {i + 1}"
        for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
            if _visible(t):
                out.append((t, f"{name}: {t.get_text()[:30]!r}"))
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                label = tick.label1
                if _visible(label) and tick.get_visible() and lo - 1e-12 <= tick.get_loc() <= hi + 1e-12:
                    out.append((label, f"{name}: {which} tick {label.get_text()!r}"))
        out += [(t, f"{name}: text {t.get_text()[:30]!r}") for t in ax.texts if _visible(t)]
        leg = ax.get_legend()
        if leg is not None:
            out += [(t, f"{name}: legend {t.get_text()[:30]!r}") for t in [*leg.get_texts(), leg.get_title()]
                    if _visible(t)]
    return out


def _number(text: str) -> bool:
    try:
        float(text.replace("\N{MINUS SIGN}", "-").replace(",", ""))
        return True
    except ValueError:
        return False


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0.5 and h > 0.5 else 0.0


def _points(ax):
    """Display coordinates of the panel's data points (line vertices with markers, scatter offsets)."""
    import numpy as np

    pts = []
    for line in ax.get_lines():
        if line.get_marker() not in (None, "None", "", " ") and line.get_visible():
            xy = np.asarray(line.get_xydata(), dtype=float)
            if len(xy):
                pts.append(ax.transData.transform(xy))
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if coll.get_visible() and len(offsets) and getattr(coll, "get_gid", lambda: None)() == "series":
            pts.append(ax.transData.transform(np.asarray(offsets, dtype=float)))
    if not pts:
        return np.zeros((0, 2))
    out = np.vstack(pts)
    return out[np.isfinite(out).all(axis=1)]


def problems(fig) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found: list[str] = []
    texts = [(t, d, t.get_window_extent(renderer)) for t, d in _texts(fig)]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if _overlap(texts[i][2], texts[j][2]) > 2.0:
                found.append(f"text overlaps: {texts[i][1]} and {texts[j][1]}")
    legends = [(leg, "figure legend") for leg in fig.legends]
    legends += [(ax.get_legend(), ax.get_title() or f"panel {i + 1}") for i, ax in enumerate(fig.axes)
                if ax.get_legend() is not None]
    for leg, where in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            pts = _points(ax)
            inside = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1))
            if inside.any():
                found.append(f"the {where} legend covers {int(inside.sum())} data point(s) of "
                             f"{ax.get_title() or 'a panel'}")
    for i, ax in enumerate(fig.axes):
        name = ax.get_title() or f"panel {i + 1}"
        if not ax.axison:
            continue
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            shown = [t for t in axis.get_ticklabels() if _visible(t)]
            if not shown:
                continue
            label = axis.label.get_text() if axis.label.get_visible() else ""
            if not label.strip() and not all(_number(t.get_text()) for t in shown):
                continue  # category names label themselves
            if not label.strip():
                shared = [o for o in fig.axes if o is not ax and (o.get_shared_x_axes() if which == "x" else
                                                                  o.get_shared_y_axes()).joined(ax, o)]
                if not any((o.xaxis if which == "x" else o.yaxis).label.get_text().strip() for o in shared):
                    found.append(f"{name}: the {which} axis has no label")
                continue
            if "(" not in label and not any(u in label for u in UNIT_WORDS):
                found.append(f"{name}: the {which} axis label {label[:40]!r} names no unit")
        series = [a for a in [*ax.get_lines(), *ax.collections] if getattr(a, "get_gid", lambda: None)() == "series"]
        if len(series) > MAX_SERIES:
            found.append(f"{name}: {len(series)} series in one panel (at most {MAX_SERIES})")
    return found
