"""hydra/launcher=per_gpu: each run holds its own GPUs (a lock per GPU), sees only those, and a run that finds none
free waits until one is given back."""
import threading
import time

import pytest


def test_runs_take_distinct_gpus_and_a_third_waits(monkeypatch, tmp_path):
    from harness.gpu_slots import gpu_slots

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setenv("HARNESS_GPU_IDS", "0,1")
    with gpu_slots(1) as a, gpu_slots(1) as b:
        assert {a[0], b[0]} == {"0", "1"}
        got: list = []
        waiter = threading.Thread(target=lambda: got.append(_take_one()), daemon=True)
        waiter.start()
        time.sleep(0.5)
        assert not got  # both GPUs are held: it waits
    waiter.join(10)
    assert got and got[0] in ("0", "1")


def _take_one():
    from harness.gpu_slots import gpu_slots

    with gpu_slots(1, poll_s=0.1) as ids:
        return ids[0]


def test_more_gpus_than_the_machine_has_is_refused(monkeypatch, tmp_path):
    from harness.core.errors import ConfigError
    from harness.gpu_slots import gpu_slots

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setenv("HARNESS_GPU_IDS", "0,1")
    with pytest.raises(ConfigError, match="runner.gpus_per_run=4 is not allowed: this machine has 2 GPU"):
        with gpu_slots(4):
            pass


def test_a_run_sees_only_the_gpus_it_holds(monkeypatch, tmp_path):
    """The run's child gets CUDA_VISIBLE_DEVICES of its slot (asked of the child itself)."""
    from harness import launch

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setenv("HARNESS_GPU_IDS", "3,5")
    seen = {}

    def fake_child(job, log_path, timeout_s, echo=True, extra_env=None):
        seen.update(extra_env or {})
        return "unavailable", None, "no GPU here"

    monkeypatch.setattr(launch, "run_child", fake_child)
    from harness.api import compose

    cfg = compose(["model=tiny-random", "precision=bf16", "runner.gpus_per_run=1", "eval=none", "quality=none",
                   f"results.path={tmp_path / 'r.csv'}"])
    row = launch.run_and_record(cfg, [])
    assert row["status"] == "unavailable" and seen["CUDA_VISIBLE_DEVICES"] in ("3", "5")
