"""llama.cpp's own `llama-perplexity --kl-divergence`, run on the same GGUF files and WikiText-2 text as the harness,
so that the harness's KLD statistics are checked against the tool whose tables people compare with (the claim
`llama-perplexity-peer`).

Why a binary and not llama-cpp-python: the statistics to check are the tool's own (its chunking, its uint16 base
log-probs, its percentiles), which the Python binding does not expose. It is built from the llama.cpp sources inside
the pinned llama-cpp-python sdist (`make llama-perplexity`, ~5 min on 2 cores) into the venv's bin folder;
`LLAMA_PERPLEXITY=<path>` names another build. Its base is the model's source GGUF written as F32 by llama.cpp's
quantize function: the weights the harness's fp32 reference dequantises, in llama.cpp's own F32 file.

The base log-probs file (chunks x 255 x vocabulary x 2 bytes: 134 MB a chunk for Gemma 3, 2.1 GB at 16 chunks) is
written in a temporary folder under the cache and removed when the check ends, however it ends."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.core.corpus import WIKITEXT_TEST
from harness.core.lifetime import die_with_parent_preexec
from harness.core.paths import cache_dir

# llama-perplexity's summary lines -> (value key, its ± key or None, scale to a fraction)
_LINES = (
    (r"Mean PPL\(Q\)\s*:\s*(\S+)\s*±\s*(\S+)", "ppl", "ppl_stderr", 1.0),
    (r"Mean PPL\(base\)\s*:\s*(\S+)\s*±\s*(\S+)", "ppl_base", "ppl_base_stderr", 1.0),
    (r"Mean\s+KLD:\s*(\S+)\s*±\s*(\S+)", "kld_mean", "kld_stderr", 1.0),
    (r"Median\s+KLD:\s*(\S+)", "kld_median", None, 1.0),
    (r"99\.0%\s+KLD:\s*(\S+)", "kld_p99", None, 1.0),
    (r"RMS Δp\s*:\s*(\S+)\s*±\s*(\S+)\s*%", "rms_dp", "rms_dp_stderr", 0.01),
    (r"Same top p:\s*(\S+)\s*±\s*(\S+)\s*%", "top1_agree", "top1_agree_stderr", 0.01),
)
STATISTICS = tuple(key for _, key, _, _ in _LINES)
STDERR = {key: err for _, key, err, _ in _LINES if err}  # a statistic -> its ± key
FIELDS = tuple(k for _, key, err, _ in _LINES for k in ((key, err) if err else (key,)))  # with the ± keys


class LlamaPerplexityError(RuntimeError):
    pass


def find_binary() -> Path | None:
    """$LLAMA_PERPLEXITY, else the venv's bin/llama-perplexity (make llama-perplexity), else one on PATH."""
    named = os.environ.get("LLAMA_PERPLEXITY")
    if named:
        return Path(named) if Path(named).is_file() and os.access(named, os.X_OK) else None
    beside = Path(sys.prefix) / "bin" / "llama-perplexity"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("llama-perplexity")
    return Path(found) if found else None


def parse_statistics(text: str) -> dict:
    """The summary of a `--kl-divergence` run as fractions (Δp and same-top as 0-1, not %), with `chunks` and the
    scored `positions`; refuses output that lacks a line, naming it."""
    out: dict = {}
    for pattern, key, err, scale in _LINES:
        m = re.search(pattern, text)
        if m is None:
            raise LlamaPerplexityError(f"llama-perplexity's output has no {key} line ({pattern!r}); its last lines: "
                                       + " | ".join(text.strip().splitlines()[-3:]))
        out[key] = float(m.group(1)) * scale
        if err:
            out[err] = float(m.group(2)) * scale
    m = re.search(r"computing over (\d+) chunks, n_ctx=(\d+)", text)
    if m:
        chunks, ctx = int(m.group(1)), int(m.group(2))
        out.update(chunks=chunks, context=ctx, positions=chunks * (ctx - 1 - ctx // 2))
    return out


class LlamaPerplexity:
    """Runs of one binary on one model: `base()` writes the reference's log-probs once, `kl_divergence(gguf)` compares
    a quantised file with them. Use as a context manager: the temporary folder (the base file) is removed on exit."""

    def __init__(self, binary: Path, base_gguf: Path, context: int, chunks: int, threads: int, timeout_s: float = 3600):
        self.binary, self.base_gguf = binary, base_gguf
        self.context, self.chunks, self.threads, self.timeout_s = context, chunks, threads, timeout_s
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.base_file: Path | None = None

    def __enter__(self) -> "LlamaPerplexity":
        self._tmp = tempfile.TemporaryDirectory(prefix="llama-perplexity-", dir=cache_dir("tmp"))
        return self

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _run(self, args: list[str], whole: bool = True) -> str:
        cmd = [str(self.binary), *(["-c", str(self.context), "--chunks", str(self.chunks), "-t", str(self.threads)]
                                   if whole else []), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=self.timeout_s,
                                  preexec_fn=die_with_parent_preexec, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LlamaPerplexityError(f"llama-perplexity ran past {self.timeout_s:.0f} s: {' '.join(args[:2])}") \
                from exc
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise LlamaPerplexityError(f"llama-perplexity exited {proc.returncode}: {tail}")
        return text

    def version(self) -> str:
        """The binary's own `--version` line (its llama.cpp build and commit), recorded with its figures."""
        lines = self._run(["--version"], whole=False).strip().splitlines()
        return lines[0] if lines else "unknown"

    def base(self) -> Path:
        """The reference's log-probs over the first `chunks` windows of the WikiText-2 test text."""
        if self.base_file is None:
            assert self._tmp is not None, "use LlamaPerplexity as a context manager"
            target = Path(self._tmp.name) / "base.kld"
            self._run(["-m", str(self.base_gguf), "-f", str(WIKITEXT_TEST), "--kl-divergence-base", str(target)])
            if not target.is_file() or target.stat().st_size == 0:
                raise LlamaPerplexityError(f"llama-perplexity wrote no base log-probs for {self.base_gguf.name}")
            self.base_file = target
        return self.base_file

    def kl_divergence(self, gguf: Path) -> dict:
        base = self.base()
        return parse_statistics(self._run(["-m", str(gguf), "--kl-divergence-base", str(base), "--kl-divergence"]))
