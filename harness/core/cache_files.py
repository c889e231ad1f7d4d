"""Cache files written whole or not at all, validated when read, and locked across processes: a torn, truncated or
invalid file is named and rebuilt, never trusted."""
from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from harness.core.errors import CacheWriteError
from harness.core.logs import get

# what a write to the cache fails with when the disk, not the code, is the problem
DISK_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG")
                        if hasattr(errno, n))


_DISK_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "File too large")


def _disk_reason(exc: BaseException) -> str | None:
    """The disk's reason for a failed write, or None when the failure is not the disk's: an OSError with a disk
    errno, or a library's own error carrying the OS message (safetensors: `I/O error: No space left on device (os
    error 28)`, which is not an OSError)."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return exc.strerror or os.strerror(exc.errno)
    return next((t for t in _DISK_TEXTS if t in str(exc)), None)


def shown_path(path: Path) -> str:
    """A cache path as rows and messages show it: `<cache>/reference/...` (no machine path), else its name."""
    from harness.core.paths import cache_dir

    try:
        return "<cache>/" + str(Path(path).resolve().relative_to(cache_dir().resolve()))
    except ValueError:
        return Path(path).name


@contextmanager
def cache_write(path: Path, what: str):
    """Writes to `path` under the cache: a full disk, a read-only or over-quota cache becomes one CacheWriteError
    naming the file, the reason and the free space there (the absolute path goes to the log only)."""
    try:
        yield
    except CacheWriteError:
        raise
    except Exception as exc:  # noqa: BLE001 - only the disk's errors are reworded; the rest re-raised as they are
        reason = _disk_reason(exc)
        if reason is None:
            raise
        try:
            where = next(p for p in Path(path).parents if p.exists())
            free = f"{shutil.disk_usage(where).free / 2**20:,.0f} MiB free there"
        except OSError:
            free = "free space unknown"
        get(__name__).error(f"cache write failed: {path}: {reason}")
        refused = CacheWriteError(f"{what} could not be written to {shown_path(path)}: {reason} "
                                  f"({free}); free space there or point HARNESS_CACHE at a folder on another disk")
        refused.errno = getattr(exc, "errno", None)
        raise refused from exc


def record_size(path: Path) -> None:
    """Remember the size of a cache file just written whole (beside it, `<name>.size`), so that a later run can tell
    a truncated copy from a good one."""
    tmp = path.with_name(f"{path.name}.size.tmp{os.getpid()}")
    try:
        with cache_write(tmp, "a cache file's size record"):
            tmp.write_text(str(path.stat().st_size))
            os.replace(tmp, path.with_name(path.name + ".size"))
    finally:
        tmp.unlink(missing_ok=True)


def cached_file_ok(path: Path) -> bool:
    """True when the cache file exists with the size recorded when it was written. A file with no record (an older
    cache) or a different size (truncated, or being written) is not trusted: the caller rebuilds it."""
    record = path.with_name(path.name + ".size")
    try:
        return path.stat().st_size == int(record.read_text())
    except (OSError, ValueError):
        return False


def record_folder_sizes(folder: Path) -> None:
    """record_size for every weights file of a checkpoint folder just written whole."""
    for weights in folder.glob("*.safetensors"):
        record_size(weights)


def checkpoint_folder_torn(folder: Path) -> str | None:
    """Why a cached checkpoint folder cannot be trusted (its config.json not a JSON object, no weights file, or one
    without the size recorded when it was written), or None when it is whole."""
    import json

    try:
        if not isinstance(json.loads((folder / "config.json").read_text()), dict):
            return "has a config.json that is not a JSON object"
    except (OSError, ValueError) as exc:
        return f"has no readable config.json ({type(exc).__name__})"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "has no weights file"
    bad = [w.name for w in weights if not cached_file_ok(w)]
    return f"has weights without a recorded size or of another size (truncated?): {bad[:2]}" if bad else None


def discard(path: Path, why: str) -> None:
    """Remove a cache file that cannot be trusted, saying which and why."""
    if path.exists():
        get(__name__).warning(f"cache file {path} {why}: removing it and building it again")
        path.unlink()


def atomic_write_text(path: Path, text: str, what: str = "a cache file") -> None:
    """Write a cache file whole or not at all (a temporary beside it, then a rename)."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with cache_write(path, what):
            tmp.write_text(text)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json_cache(path: Path, valid) -> dict:
    """A JSON cache file as a dict, with the entries `valid(key, value)` accepts; a torn, empty or wrong-typed file,
    or an invalid entry, is dropped with a warning naming the file (the caller measures it again)."""
    import json

    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"a {type(data).__name__}, not an object")
    except (OSError, ValueError) as exc:
        get(__name__).warning(f"cache file {path} is not readable JSON ({type(exc).__name__}: {exc}): rebuilding it")
        return {}
    good = {k: v for k, v in data.items() if valid(k, v)}
    for k in set(data) - set(good):
        get(__name__).warning(f"cache file {path}: entry {k!r} = {data[k]!r} is not valid: measuring it again")
    return good


def write_gzip(path: Path, data: bytes) -> None:
    """Gzip `data` to `path` atomically and reproducibly (no file name or time in the header)."""
    import gzip

    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    os.replace(tmp, path)


def remove_stale_tmp(target: Path) -> None:
    """Remove `<target>.tmp<pid>` folders or files left by a process that was killed while writing `target` (its pid
    is gone); another live process's temporary is left alone."""
    import shutil

    for stale in target.parent.glob(f"{target.name}.tmp*"):
        pid = stale.name.rsplit(".tmp", 1)[1]
        if not pid.isdigit() or not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: Path, waiting: str = ""):
    """Hold an exclusive lock on `path` (created if missing) for the block: across processes, and across the nodes of
    a cluster sharing the folder (Linux implements flock over NFS with POSIX locks). When another holder has it,
    `waiting` is logged once and this waits."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                get(__name__).info(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
