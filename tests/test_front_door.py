"""`harness <command>`: the one front door (harness/cli.py) reaches each command's own entry point."""
import subprocess
import sys

from harness import cli
from harness.record.schema import NAMES


def test_columns_prints_every_declared_column(capsys):
    assert cli.main(["columns"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| column | unit | meaning |")
    assert all(f"| `{name}` |" in out for name in NAMES)


def test_unknown_command_is_one_line_with_the_choices(capsys):
    assert cli.main(["analyse-this"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'analyse-this'" in err and "regenerate" in err and "reproduce" in err


def test_no_command_prints_the_usage_and_fails(capsys):
    assert cli.main([]) == 2
    assert "harness run" in capsys.readouterr().out
    assert cli.main(["--help"]) == 0


def test_each_command_reaches_its_own_parser():
    # --help of each subcommand is its own argparse usage (prog and options), not the front door's
    for command, option in (("analyse", "--hardware"), ("merge", "-o"), ("reproduce", "run"), ("upgrade", "results")):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", command, "--help"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, (command, proc.stderr[-500:])
        assert "usage:" in proc.stdout and option in proc.stdout, (command, proc.stdout[:500])


def test_the_console_script_is_declared():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["harness"] == "harness.cli:main"
