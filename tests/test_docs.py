"""The documentation: the site builds with --strict (a broken link or a stale reference fails), the README stays short,
and every command the README and the getting-started page show is run here on the tiny model (GGUF commands need the
real model and llama.cpp: they run in the integration tier). `make` lines are what CI itself runs."""
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMAND = re.compile(r"^(python -m harness\S*)( .*)?$")


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                     **__import__("os").environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'id="harness.api.run"' in (tmp_path / "site" / "reference" / "api" / "index.html").read_text()  # docstrings


def test_the_readme_is_short_with_a_table_of_contents():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "](#set-up-two-commands)" in text and "docs/getting-started.md" in text


def _commands(page: str) -> list[str]:
    out, inside = [], False
    for line in (ROOT / page).read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.startswith("python -m harness"):
            out.append(line.split("#", 1)[0].strip())
    return out


CASES = [(page, cmd) for page in ("README.md", "docs/getting-started.md") for cmd in _commands(page)]
LIGHT = {"bench": "quick", "eval": "none", "quality": "none", "capability": "none"}


def _on_tiny(cmd: str, tmp_path) -> list[str]:
    """The command's own overrides, on the tiny model with light settings unless the command is about them."""
    args = shlex.split(cmd)[3:]
    keys = {a.split("=", 1)[0].lstrip("+") for a in args if "=" in a}
    out = []
    for a in args:
        key, _, value = a.partition("=")
        if key == "model":
            a = "model=tiny-random" if "hf" not in value else a
        elif key == "model.id":
            a = f"model.id={_tiny_checkpoint(tmp_path)}"
        elif key in ("eval.per_subject", "eval.limit"):
            a = f"{key}=2"
        elif key == "eval" and value == "mmlu":
            a = "eval=mmlu_quick"
        out.append(a)
    if "--cfg" in args:
        return out
    out += [f"{k}={v}" for k, v in LIGHT.items() if k not in keys and not (k == "eval" and "eval.subjects" in keys)]
    if "model" not in keys:
        out.append("model=tiny-random")
    if "eval.subjects" in keys or "eval" in keys:
        out.append("eval.per_subject=2" if "eval.per_subject" not in keys else "")
    if dict(a.split("=", 1) for a in args if "=" in a).get("bench") == "serving":  # two short levels
        out += ["bench.concurrency=[1,2]", "bench.new_tokens=4", "bench.prompt_tokens=16", "bench.curve_repeats=1"]
    if "+sweep" in keys:  # one configuration of the preset, on the tiny model
        out += ["precision=fp32", "capability=none", "quality=none", "eval=none", "bench=quick"]
    out += [f"results.path={tmp_path / 'runs.csv'}", f"hydra.sweep.dir={tmp_path / 'mr'}"]
    return [a for a in dict((a.split("=", 1)[0], a) for a in out if a).values()]


def _tiny_checkpoint(tmp_path):
    from tests.conftest import tiny_llama

    folder = tmp_path / "ckpt"
    if not folder.exists():
        from harness.models.local_tokenizer import local_tokenizer

        tiny_llama().save_pretrained(folder)
        local_tokenizer(1024).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("page, cmd", CASES, ids=[f"{p.split('/')[-1]}: {c}" for p, c in CASES])
def test_every_shown_command_runs(page, cmd, tmp_path, request):
    if "engine=vllm precision=gptq" in cmd:  # known, open in issue 42: not a pass, not a block
        request.applymarker(pytest.mark.xfail(strict=False, reason=(
            "issue 42, open: on the 2026-12-04 machine vLLM's CPU EngineCore died before the first token "
            "(EngineDeadError) in this command, alone and under load; the cause is not found yet")))
    if "gguf-" in cmd:
        pytest.importorskip("llama_cpp", reason="GGUF commands need llama.cpp (make llamacpp)")
    program = shlex.split(cmd)[2]
    if program == "harness.analysis":
        from tests.analysis.conftest import make_csv, row

        csv = cmd.split()[3]
        src = ROOT / csv if (ROOT / csv).exists() else make_csv(tmp_path / "runs.csv", [row("m", "fp32", 20, 400,
                                                                                          0.5, 0.0, 4e8)])
        args = [str(src), "--out", str(tmp_path / "out"), *shlex.split(cmd)[4:]]
    else:
        args = _on_tiny(cmd, tmp_path)
    proc = subprocess.run([sys.executable, "-m", program, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{cmd} (run as {args}) exited {proc.returncode}:\n{proc.stderr[-2500:]}"
