"""Rewrite a wheel without the members a machine does not need (bitsandbytes ships a 20-40 MB library per CUDA
version; the GPU machine needs its CPU library and the CUDA 13 ones). RECORD is rewritten to match.

    python scripts/gpu/trim_wheel.py IN.whl OUT_DIR --drop 'bitsandbytes/libbitsandbytes_cuda1[0-2]*' ...
"""
from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import zipfile
from pathlib import Path


def trim(src: Path, out_dir: Path, drop: list[str]) -> Path:
    out = out_dir / src.name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        lines = []
        for info in zin.infolist():
            if info.filename == record_name or any(fnmatch.fnmatch(info.filename, p) for p in drop):
                continue
            data = zin.read(info)
            zout.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append(f"{info.filename},sha256={digest},{len(data)}")
        lines.append(f"{record_name},,")
        zout.writestr(record_name, "\n".join(lines) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("wheel", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--drop", nargs="+", default=[])
    args = ap.parse_args()
    out = trim(args.wheel, args.out_dir, args.drop)
    print(f"{out.name}: {args.wheel.stat().st_size / 1e6:.1f} MB -> {out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
