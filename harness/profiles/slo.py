"""Latency-target profiles (conf/slo/*.yaml): a TTFT and a TPOT bound at a stated percentile, read and checked.
Judging a run's load curve against them is the analysis's (harness/analysis/slo.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ConfigError
from harness.measure.levels import PERCENTILES
from harness.profiles import names, number, read

CONF = Path(__file__).resolve().parents[2] / "conf" / "slo"
DEFAULT = ("server", "interactive", "offline", "batch1")


@dataclass(frozen=True)
class SLO:
    name: str
    ttft_ms: float | None
    tpot_ms: float | None
    percentile: int = 99
    max_concurrency: int | None = None
    description: str = ""
    source: str = ""

    def label(self) -> str:
        bounds = [f"TTFT p{self.percentile} <= {self.ttft_ms:g} ms" if self.ttft_ms is not None else "",
                  f"TPOT p{self.percentile} <= {self.tpot_ms:g} ms" if self.tpot_ms is not None else "",
                  f"concurrency <= {self.max_concurrency}" if self.max_concurrency else ""]
        return f"{self.name} ({', '.join(b for b in bounds if b) or 'no latency bound'})"


def slo_names() -> list[str]:
    return names(CONF)


def load_slo(name: str) -> SLO:
    d, path = read(CONF, "SLO", name, {"name": "a plain name"})
    where = f"slo/{path.name}"
    f = lambda k: number(d, k, where)  # noqa: E731
    pct = number(d, "percentile", where, default=99)
    if pct not in PERCENTILES:  # a percentile no run records would silently meet no level
        raise ConfigError(f"conf/{where}: percentile={d['percentile']!r} is not recorded; the runs record "
                          f"{', '.join(f'p{p}' for p in PERCENTILES)} of TTFT and TPOT (harness/measure/levels.py)")
    return SLO(d["name"], f("ttft_ms"), f("tpot_ms"), int(pct),
               None if d.get("max_concurrency") is None else int(d["max_concurrency"]), d.get("description", ""),
               d.get("source", ""))


