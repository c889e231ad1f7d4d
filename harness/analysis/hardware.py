"""Hardware profiles (conf/hardware/*.yaml): price per hour, memory, and which measured rows belong to them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[2] / "conf" / "hardware"


@dataclass(frozen=True)
class Hardware:
    name: str
    usd_per_hour: float
    mem_bandwidth_gbs: float | None  # None: measured (this machine)
    memory_gb: float | None = None  # GB (1e9 bytes) of device memory (RAM for a CPU), for the capacity table
    device: str = "cpu"  # cpu | cuda: the rows' `device`
    device_match: str | None = None  # text of the rows' device/CPU name; None: the CPU that ran the CSV
    description: str = ""
    price_source: str = ""
    price_as_of: str = ""


def profiles() -> list[str]:
    return sorted(p.stem for p in CONF.glob("*.yaml"))


def load_hardware(name: str, price: float | None = None) -> Hardware:
    path = CONF / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown hardware profile {name!r}; choices: {', '.join(profiles())}")
    d = yaml.safe_load(path.read_text())
    bw = d.get("mem_bandwidth_gbs")
    return Hardware(name=d["name"], usd_per_hour=float(price if price is not None else d["usd_per_hour"]),
                    mem_bandwidth_gbs=None if bw in (None, "measured") else float(bw),
                    memory_gb=None if d.get("memory_gb") is None else float(d["memory_gb"]),
                    device=d.get("device", "cpu"), device_match=d.get("device_match"),
                    description=d.get("description", ""), price_source=d.get("price_source", ""),
                    price_as_of=str(d.get("price_as_of", "")))
