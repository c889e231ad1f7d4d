"""Logging: one logger per package (`harness.launch`, `harness.precision`, ...), all under `harness`, so that users
route, silence or keep them as they like. `log_level=` (DEBUG, INFO, WARNING, ERROR) sets the level; the terminal
handler prints `[harness] message` (warnings and errors to stderr), as the harness always has. The run's summary
(harness/summary.py) is the harness's output, not a log, and stays a print."""
from __future__ import annotations

import logging
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Terminal(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        prefix = "[harness] warning: " if record.levelno == logging.WARNING else \
            "[harness] error: " if record.levelno >= logging.ERROR else "[harness] "
        try:
            stream.write(prefix + record.getMessage() + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


def setup_logging(level: str = "INFO") -> logging.Logger:
    """Attach the terminal handler to the `harness` logger once, at `level`."""
    root = logging.getLogger("harness")
    # an unknown level is the config check's to refuse, in one line; until then, INFO
    root.setLevel(str(level).upper() if str(level).upper() in LEVELS else "INFO")
    if not any(isinstance(h, _Terminal) for h in root.handlers):
        root.addHandler(_Terminal())
    root.propagate = False
    return root


def get(name: str) -> logging.Logger:
    """The package's logger: `get(__name__)` gives `harness.<package>`."""
    parts = name.split(".")
    return logging.getLogger(".".join(parts[:2]) if parts[0] == "harness" else name)
