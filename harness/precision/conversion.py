"""Models converted for another runtime (ONNX Runtime GenAI, OpenVINO), built once and cached like the dequantised
baseline. A cache entry is keyed by the source checkpoint's content, the scheme and the versions of the converting
libraries; it records how long the conversion took, so a run that reuses it still reports that time in its own
column (`convert_s`) instead of hiding a first conversion in the first run's load time."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.core.errors import ConversionError
from harness.core.logs import get
from harness.models.checkpoint import fingerprint
from harness.core.paths import cache_dir, in_cache
from harness.core.lifetime import die_with_parent_preexec
from harness.core.cache_files import cache_write, remove_stale_tmp

RECORD = "conversion.json"


@dataclass
class Converted:
    folder: Path
    convert_s: float  # seconds the conversion took when this cache entry was made
    cached: bool  # True when this run reused it


def converted(kind: str, source: Path, scheme: str, versions: dict[str, str],
              convert: Callable[[Path, Path], None]) -> Converted:
    """`convert(source, out)` writes the converted model into the empty folder `out`; it runs once per key. A folder
    without its record (a conversion that died half-way) is removed and converted again."""
    key = hashlib.sha256(json.dumps({"source": fingerprint(source), "scheme": scheme, "versions": versions},
                                    sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir(kind) / f"{source.name}-{scheme}-{key}"
    remove_stale_tmp(target)
    if target.exists():
        why = torn(target)
        if why is None:
            return Converted(target, float(json.loads((target / RECORD).read_text())["convert_s"]), True)
        get(__name__).warning(f"cached conversion {target} {why}: removing it and converting again")
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    get(__name__).info(f"converting {source.name} to {scheme} once (cached in {in_cache(target)}) ...")
    t0 = time.perf_counter()
    try:
        with cache_write(target, f"the {scheme} conversion"):
            convert(source, tmp)
            seconds = time.perf_counter() - t0
            files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
            (tmp / RECORD).write_text(json.dumps({"convert_s": seconds, "scheme": scheme, "versions": versions,
                                                  "source": str(source), "files": files}, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written left under the cache
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return Converted(target, seconds, False)


def torn(folder: Path) -> str | None:
    """Why a cached conversion cannot be trusted (its record unreadable, a file missing or of another size than when
    it was written), or None when every file is as recorded."""
    try:
        record = json.loads((folder / RECORD).read_text())
        float(record["convert_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"has no readable {RECORD}"
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        return f"records no file sizes (written by an older version) in {RECORD}"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"lacks {name}"
        if path.stat().st_size != size:
            return f"has {name} of {path.stat().st_size} bytes, {size} when written (torn)"
    return None


def run_converter(cmd: list[str], out: Path, what: str, env: dict | None = None) -> None:
    """Run a converter in its own process (its memory is returned when it ends); its output goes to `out/convert.log`.
    A failure raises with the converter's last error line."""
    import subprocess

    log = out / "convert.log"
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=die_with_parent_preexec).returncode
    if rc != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        raise ConversionError(f"{what} failed (exit {rc}): {last.strip()[:300]}")
