"""The tracked tree stays light enough that a GPU machine's 64 MiB transfer holds it plus the wheels it needs
(scripts/gpu_run.sh): at most 30 MB of tracked files."""
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

LIMIT = 30_000_000


def test_tracked_files_fit_the_budget():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    sizes = {n.decode(): (ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file()}
    total = sum(sizes.values())
    biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert total <= LIMIT, f"tracked files are {total / 1e6:.1f} MB (> {LIMIT / 1e6:.0f} MB); largest: {biggest}"


def test_committed_logs_and_predictions_are_gzipped():
    """What is committed (git's index), not the working tree: `make run`'s own plain log is not committed."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z", "results"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    plain = [n.decode() for n in names if n and n.decode().endswith((".log", ".jsonl"))
             and any(part.endswith((".logs", ".predictions")) for part in n.decode().split("/")[:-1])]
    assert not plain, f"run `python -m harness.record.files <csv>` before committing: {plain[:3]}"


def test_committed_results_name_no_path_of_this_machine():
    """Rows and reports name their logs relative to the repository (harness/reproduce/checks.py passes the CSV so):
    nothing committed under results/ holds this checkout's absolute path."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z", "results"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    texts = [n for n in names if n.endswith((".csv", ".md", ".yaml", ".html", ".json"))]
    holding = [n for n in texts if str(ROOT) in (ROOT / n).read_text(errors="replace")]
    assert not holding, holding[:5]
