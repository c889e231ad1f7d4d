"""Hardware profiles (conf/hardware/*.yaml): price per hour, memory, and which measured rows belong to them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.profiles import names, number, read

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
    return names(CONF)


def load_hardware(name: str, price: float | None = None) -> Hardware:
    d, path = read(CONF, "hardware", name, {"name": "a plain name", "usd_per_hour": "a price in US$ per hour, e.g. 1.5"})
    where = f"hardware/{path.name}"
    bw = d.get("mem_bandwidth_gbs")
    return Hardware(name=d["name"], usd_per_hour=price if price is not None else number(d, "usd_per_hour", where),
                    mem_bandwidth_gbs=None if bw in (None, "measured") else number(d, "mem_bandwidth_gbs", where),
                    memory_gb=number(d, "memory_gb", where),
                    device=d.get("device", "cpu"), device_match=d.get("device_match"),
                    description=d.get("description", ""), price_source=d.get("price_source", ""),
                    price_as_of=str(d.get("price_as_of", "")))
