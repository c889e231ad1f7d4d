"""Child-process entry: `python -m harness.child` reads one job (JSON) on stdin, runs it, and writes its result
(JSON) to the file descriptor named by $HARNESS_RESULT_FD (harness/launch.py's pipe).

Exit codes: 0 ok, 3 unavailable, 1 failed (the result then holds the error class and first line). The worker dies
with the process that started it ($HARNESS_PARENT_PID): a sweep killed by any signal leaves no worker behind."""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), then check that the parent did not
    die before the request was made. Elsewhere a thread watches the parent instead."""
    parent = int(os.environ.get("HARNESS_PARENT_PID", "0"))
    if not parent:
        return
    from harness.core.lifetime import ask_parent_death_signal

    if not ask_parent_death_signal(signal.SIGKILL):
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def main() -> int:
    die_with_parent()
    from pathlib import Path

    from omegaconf import OmegaConf

    from harness.core.errors import Unavailable
    from harness.run import measure_in_process

    from harness.config.schema import setting
    from harness.core.logs import setup_logging

    job = json.loads(sys.stdin.read())
    cfg = OmegaConf.create(job["config"])
    setup_logging(setting(cfg, "log_level"))
    try:
        row = measure_in_process(cfg, predictions_dir=Path(job["predictions_dir"]), run_id=job["run_id"])
        result, code = {"status": "ok", "row": row}, 0
    except Unavailable as exc:
        result, code = {"status": "unavailable", "error": str(exc)}, 3
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result, code = {"status": "failed", "error": f"{type(exc).__name__}: {first}"[:500]}, 1
    with os.fdopen(int(os.environ["HARNESS_RESULT_FD"]), "w") as out:
        out.write(json.dumps(result, default=float))
    return code


if __name__ == "__main__":
    sys.exit(main())
