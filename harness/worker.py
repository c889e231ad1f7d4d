"""Child-process entry: `python -m harness.worker <job.json>` runs one configuration and writes its result JSON.

Exit codes: 0 ok, 3 unavailable, 1 failed (the result JSON then holds the error class and first line)."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def main(job_path: str) -> int:
    from omegaconf import OmegaConf

    from harness.run import Unavailable, execute

    job = json.loads(Path(job_path).read_text())
    cfg = OmegaConf.create(job["config"])
    out = Path(job["result_path"])
    try:
        row = execute(cfg, predictions_dir=Path(job["predictions_dir"]), run_id=job["run_id"])
        result, code = {"status": "ok", "row": row}, 0
    except Unavailable as exc:
        result, code = {"status": "unavailable", "error": str(exc)}, 3
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result, code = {"status": "failed", "error": f"{type(exc).__name__}: {first}"[:500]}, 1
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=float))
    tmp.replace(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
