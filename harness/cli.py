"""The one front door: `harness <command>`, installed as a console script (pyproject's [project.scripts]).

    harness run [overrides ...]        one run or, with -m, a sweep (= python -m harness)
    harness analyse RESULTS.csv ...    the report, plots and HTML page (= python -m harness.analysis)
    harness regenerate [--write]       check or rewrite every committed report and figure
    harness merge A.csv ... -o OUT     merge results CSVs and their side tables
    harness upgrade RESULTS.csv        rewrite an older-layout CSV under today's columns
    harness reproduce list | run ...   the published claims
    harness columns                    the result columns, as Markdown
    harness config                     the configuration keys with their defaults and meaning, as Markdown

`python -m harness` stays the alias of `harness run`."""
from __future__ import annotations

import sys

COMMANDS = {
    "run": ("harness.__main__", "entry"),
    "analyse": ("harness.analysis.__main__", "main"),
    "analyze": ("harness.analysis.__main__", "main"),
    "regenerate": ("harness.regenerate", "main"),
    "merge": ("harness.record.merge", "main"),
    "upgrade": ("harness.record.upgrade", "main"),
    "reproduce": ("harness.reproduce.__main__", "main"),
    "columns": ("harness.record.schema", "print_table"),
    "config": ("harness.config.schema", "print_table"),
}


def main(argv: list[str] | None = None) -> int:
    import importlib

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choices: {', '.join(c for c in COMMANDS if c != 'analyze')}",
              file=sys.stderr)
        return 2
    module, function = COMMANDS[command]
    target = getattr(importlib.import_module(module), function)
    if command == "run":  # Hydra reads sys.argv itself
        sys.argv = [f"{sys.argv[0]} run", *rest]
        target()
        return 0
    result = target(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
