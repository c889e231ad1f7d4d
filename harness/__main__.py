"""`python -m harness model=... precision=...`: one run, one CSV row. With `-m`, a Hydra sweep of runs."""
from __future__ import annotations

import os
import re
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
import yaml
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from harness.models import ModelLoadError
from harness.config.schema import setting
from harness.config_key import config_hash
from harness.launch import Terminated
from harness.precision.registry import get_scheme
from harness.resolvers import register as _register_resolvers

_register_resolvers()
from harness.record.store import ResultsFileError, done_hashes


def _validate(cfg: DictConfig) -> None:
    """Everything that can be checked before a model is loaded: values, scheme, tasks, the model's source."""
    from harness.config_check import check_tasks, check_values
    from harness.models import check_source

    check_values(cfg)
    get_scheme(cfg.precision.name)  # unknown scheme -> message listing the choices
    check_tasks(cfg)  # unknown task or subject -> the choices; shots within the few-shot split
    check_source(cfg.model)  # a missing local folder, an unreachable hub


def _check_results(path: str) -> None:
    """An alien file is an error; a torn line (a writer killed mid-row) is reported and left alone: that run is
    simply not counted as done, and the next append starts on a fresh line."""
    from harness.record.store import read_rows

    try:
        read_rows(path)
    except ResultsFileError as exc:
        if re.search(r"\bline 1\b", str(exc)):  # the header itself: not this harness's file
            raise
        print(f"warning: {exc}", file=sys.stderr)


def _interrupted(cfg, label: str, exc: BaseException) -> None:
    """Ctrl-C or SIGTERM: the run in flight was killed (its process group) and is not recorded; say so in one line,
    with the rows the results file holds and the command that resumes, and stop the whole sweep."""
    import shlex

    from harness.record.store import read_rows

    try:
        rows = len(read_rows(cfg.results.path, strict=False))
    except Exception:  # noqa: BLE001 - the count is a courtesy; the message must come out
        rows = "?"
    how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C (SIGINT)"
    resume = "python -m harness " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _say_and_exit(f"\n[harness] stopped by {how} during {label}: that run was killed and not recorded; {rows} rows "
                  f"in {cfg.results.path}. Resume (recorded runs are skipped): {resume}",
                  130 if how.startswith("Ctrl") else 143)


def _say_and_exit(line: str, code: int) -> None:
    """Say `line` on stderr and exit now, even when stderr or stdout is gone (a closed terminal, a pipe whose reader
    died): a print that fails must not turn the stop into an error Hydra's sweep catches and goes on after."""
    try:
        print(line, file=sys.stderr, flush=True)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    finally:
        os._exit(code)


def _skipped(cfg, label: str, chash: str) -> dict:
    from harness.record.store import read_rows

    print(f"[harness] skip {label}: already recorded ok in {cfg.results.path} (config {chash}; force=true reruns)")
    recorded = [r for r in read_rows(cfg.results.path, strict=False) if r["config_hash"] == chash]
    return {**recorded[-1], "status": "skipped", "recorded_status": "ok"}


class _claimed:
    """Hold the claim of one configuration in one results file (`<csv>.claims/<hash>.lock`, flock) while it runs:
    two sweeps on one CSV never measure one configuration at the same time. A sweep that finds it claimed says so
    and waits; when the claim is released it enters with `free` False if the other sweep recorded it ok meanwhile."""

    def __init__(self, cfg, label: str, chash: str):
        from harness.record import layout

        self.cfg, self.label, self.chash = cfg, label, chash
        self.path = layout.folder(cfg.results.path, "claims") / f"{chash}.lock"

    def __enter__(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            print(f"[harness] wait {self.label}: another sweep is measuring it in {self.cfg.results.path} now "
                  f"(config {self.chash}); waiting for it", flush=True)
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self.chash not in done_hashes(self.cfg.results.path) or bool(self.cfg.force)

    def __exit__(self, *exc) -> None:
        self.handle.close()


from harness.core.errors import ConfigRefused, HarnessError  # noqa: E402 - the one-line refusal and the base


def run_unless_recorded(cfg: DictConfig, overrides: list[str], announce=None) -> dict:
    """Validate, skip a configuration already recorded ok, else run it (isolated) and record its row. The command
    line and harness.api both come here. Returns the row (status "skipped" with the recorded row's hash when
    skipped); raises ConfigRefused for a refused configuration."""
    from harness.launch import run_and_record
    from harness.summary import summary_lines

    try:
        _validate(cfg)
        _check_results(cfg.results.path)
        done = done_hashes(cfg.results.path)
    except HarnessError as exc:  # the harness's own refusals only: a programming error stays a traceback
        raise ConfigRefused(str(exc)) from None
    except OmegaConfBaseException as exc:  # a bad interpolation in a user's YAML
        raise ConfigRefused(f"the configuration does not resolve: {str(exc).strip().splitlines()[0]}") from None
    from harness.models.identity import model_label

    label = f"model={model_label(cfg.model)} precision={cfg.precision.name}"
    if announce:  # the sweep's progress line, once the configuration is known to be valid
        print(announce(label), flush=True)
    download_s = None
    if cfg.model.get("source") == "hub":  # here, before the run's child and its timeout: the download is no load time
        from harness.models.hub import fetch

        try:
            _, download_s = fetch(cfg.model, progress=bool(setting(cfg, "progress")))
        except ModelLoadError as exc:
            raise ConfigRefused(str(exc)) from None
    chash = config_hash(cfg)
    if chash in done and not cfg.force:
        return _skipped(cfg, label, chash)
    try:
        with _claimed(cfg, label, chash) as free:
            if not free:
                return _skipped(cfg, label, chash)
            row = run_and_record(cfg, overrides, download_s=download_s)
    except (KeyboardInterrupt, Terminated) as exc:
        _interrupted(cfg, label, exc)
    except OSError as exc:  # the results folder itself cannot be written: one line, the sweep goes on
        folder = os.path.dirname(os.path.abspath(cfg.results.path))
        if isinstance(exc.filename, str) and os.path.dirname(os.path.abspath(exc.filename)) == folder:
            print(f"error: {label}: results.path={cfg.results.path}: its folder cannot be written "
                  f"({exc.strerror or type(exc).__name__}: {exc.filename})", file=sys.stderr)
        else:
            print(f"error: {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    if row.get("run_id"):
        print("\n".join(summary_lines(label, row)), flush=True)
    if row.get("record_error"):
        print(f"error: the row was not written to {cfg.results.path} ({row['record_error']}); it is kept in "
              f"{row['unsaved_path']}: `python -m harness.record.merge {row['unsaved_path']} -o <results.csv>` "
              "copies it into a results file", file=sys.stderr, flush=True)
        row = {**row, "status": "failed"}
    return row


@hydra.main(config_path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conf"), config_name="config",
            version_base="1.3")
def main(cfg: DictConfig) -> int:
    from harness.core.logs import setup_logging
    from harness.sweep import progress_line, record_outcome

    setup_logging(setting(cfg, "log_level"))
    hc = HydraConfig.get()
    multirun = hc.mode.name == "MULTIRUN"
    announce = (lambda label: progress_line(hc.sweep.dir, hc.job.num, label)) if multirun else None
    try:
        row = run_unless_recorded(cfg, list(hc.overrides.task), announce)
    except ConfigRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        if multirun:
            record_outcome(hc.sweep.dir, "failed")
            return 2
        sys.exit(2)
    status = row["status"]
    if multirun:
        record_outcome(hc.sweep.dir, status)
    elif status in ("failed", "timeout"):
        sys.exit(1)
    return 0


CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conf")
GROUPS = ("model", "precision", "engine", "bench", "eval", "capability", "quality", "hydra/launcher", "sweep")


def precheck(argv: list[str]) -> str | None:
    """The command line's config-group choices, checked before Hydra composes anything: an unknown option (also in a
    sweep's comma list) or a malformed override is one line naming it and the choices (Hydra's own message spans a
    traceback hint). Returns the line, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    args = [a for a in argv if "=" in a and not a.startswith("-")]
    extra = [os.path.expanduser(a.split("=", 1)[1]) for a in argv if a.startswith(("--config-dir=", "-cd="))]
    parser, parsed = OverridesParser.create(), []
    for arg in args:
        try:
            parsed += parser.parse_overrides([arg])
        except OverrideParseException as exc:
            return f"error: the override {arg!r} is malformed ({str(exc).strip().splitlines()[0]})"
    for ov in parsed:
        group = ov.key_or_group.removeprefix("+")
        if group not in GROUPS:
            continue
        values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [str(ov.value())]
        folders = [os.path.join(d, group) for d in [CONF, *extra]]
        choices = {f[:-5] for d in folders if os.path.isdir(d) for f in os.listdir(d) if f.endswith(".yaml")}
        if group == "precision":  # the registry's schemes, stored by harness.resolvers.store_schemes
            from harness.precision.registry import all_schemes

            choices |= set(all_schemes())
        choices = sorted(choices)
        if group == "hydra/launcher":
            choices += ["basic", "joblib", "submitit_local", "submitit_slurm"]
        for v in values:
            if v not in choices:
                return f"error: {group}={v} is not allowed: expected one of {', '.join(choices)}"
    return None


def cache_refused() -> str | None:
    """A cache that cannot be written (read-only, another user's): one line before anything starts, rather than a
    failed row per run naming whichever cache folder the run tried first."""
    from harness.core.paths import cache_root, unwritable

    if (why := unwritable(cache_root())) is not None:
        return (f"error: the cache {cache_root()}: {why}; set HARNESS_CACHE to a folder you can write (it holds "
                "converted models, references and tokenizers)")
    return None


def composition_error(exc: BaseException) -> str:
    """One line for a configuration Hydra could not compose: a YAML file that does not parse (file, line, column and
    the parser's words), a defaults list that includes itself, or Hydra's or OmegaConf's own first line."""
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
        return f"{where} is not valid YAML: {getattr(exc, 'problem', None) or exc}"
    if isinstance(exc, RecursionError):
        return ("the configuration does not compose: a defaults list includes itself (directly or through another "
                "file); check the defaults of the config files named on the command line and under --config-dir")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    import re

    unknown = re.match(r"Could not override '([\w.]+)'", first)
    if unknown and "not in struct" in f"{exc} {exc.__cause__}":  # a key no section declares: say which ones it has, or its new name
        from harness.config.schema import unknown_key

        return unknown_key(unknown.group(1))
    return f"the configuration does not compose: {first}"


def entry() -> None:
    """The command: Ctrl-C or SIGTERM at any moment (start-up, between runs) is one line and exit 130 / 143; a bad
    group option is one line and exit 2."""
    import signal

    from harness.launch import Terminated, _raise_terminated

    signal.signal(signal.SIGTERM, _raise_terminated)
    if (line := precheck(sys.argv[1:]) or cache_refused()) is not None:
        print(line, file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # composition errors come back here, to be said in one line
    try:
        main()
    except (HydraException, OmegaConfBaseException, yaml.YAMLError, RecursionError) as exc:
        print(f"error: {composition_error(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _say_and_exit("\n[harness] stopped by Ctrl-C (SIGINT) before a run started or between runs: nothing was "
                      "running; recorded runs are kept and a rerun skips them", 130)
    except Terminated:
        _say_and_exit("\n[harness] stopped by SIGTERM before a run started or between runs: nothing was running; "
                      "recorded runs are kept and a rerun skips them", 143)


if __name__ == "__main__":
    entry()
