"""The conversion cache: converted once, reused with the time the conversion took, a half-written entry rebuilt, a
converter's failure an Unavailable that carries its last error line."""
import sys

import pytest

from harness.core.errors import ConversionError, Unavailable
from harness.precision.conversion import RECORD, converted, run_converter


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model-a"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    return folder


def test_converted_once_then_reused_with_its_conversion_time(source):
    calls = []

    def convert(src, out):
        calls.append(out)
        (out / "model.onnx").write_text("graph")

    first = converted("onnx", source, "ort-int4", {"lib": "1.0"}, convert)
    again = converted("onnx", source, "ort-int4", {"lib": "1.0"}, convert)
    assert len(calls) == 1 and not first.cached and again.cached
    assert again.folder == first.folder and (first.folder / "model.onnx").read_text() == "graph"
    assert again.convert_s == pytest.approx(first.convert_s) and first.convert_s > 0


def test_the_key_holds_the_scheme_the_library_versions_and_the_weights(source):
    def convert(src, out):
        (out / "x").write_text("1")

    base = converted("onnx", source, "ort-int4", {"lib": "1.0"}, convert).folder
    assert converted("onnx", source, "ort-int8", {"lib": "1.0"}, convert).folder != base
    assert converted("onnx", source, "ort-int4", {"lib": "1.1"}, convert).folder != base
    (source / "model.safetensors").write_bytes(b"y" * 11)  # new weights
    assert converted("onnx", source, "ort-int4", {"lib": "1.0"}, convert).folder != base


def test_a_folder_without_its_record_is_converted_again(source):
    def convert(src, out):
        (out / "model.onnx").write_text("whole")

    entry = converted("onnx", source, "ort-int4", {}, convert).folder
    (entry / RECORD).unlink()  # as if the conversion died before the record was written
    (entry / "model.onnx").write_text("torn")
    again = converted("onnx", source, "ort-int4", {}, convert)
    assert not again.cached and (again.folder / "model.onnx").read_text() == "whole"


def test_a_failed_conversion_leaves_nothing_and_is_unavailable_with_the_converters_error(source, tmp_path):
    def convert(src, out):
        run_converter([sys.executable, "-c", "import sys; print('loading'); sys.exit('KeyError: rope_type')"], out,
                      "the test converter")

    with pytest.raises(ConversionError, match="rope_type") as err:
        converted("onnx", source, "ort-int4", {}, convert)
    assert isinstance(err.value, Unavailable) and "exit 1" in str(err.value)
    assert not [p for p in (tmp_path / "cache" / "onnx").iterdir()]


@pytest.mark.parametrize("damage", ["truncate", "delete", "empty record", "stale tmp"])
def test_a_torn_or_incomplete_entry_is_named_and_rebuilt(source, damage, caplog):
    def convert(src, out):
        (out / "model.onnx.data").write_bytes(b"w" * 1000)
        (out / "genai_config.json").write_text("{}")

    entry = converted("onnx", source, "ort-int4", {}, convert).folder
    if damage == "truncate":
        (entry / "model.onnx.data").write_bytes(b"w" * 10)
    elif damage == "delete":
        (entry / "genai_config.json").unlink()
    elif damage == "empty record":
        (entry / RECORD).write_text("")
    else:  # a converter killed mid-way left its temporary folder (a pid that no longer runs)
        (entry.parent / f"{entry.name}.tmp999999999").mkdir()
    again = converted("onnx", source, "ort-int4", {}, convert)
    assert (again.folder / "model.onnx.data").stat().st_size == 1000
    assert not list(entry.parent.glob("*.tmp*"))
    if damage != "stale tmp":
        assert not again.cached and "converting again" in caplog.text
    else:
        assert again.cached


def test_a_converter_dies_with_the_process_that_started_it(tmp_path):
    """The process running the converter is SIGKILLed (as a sweep killed with kill -9): the converter goes too."""
    import os
    import signal
    import subprocess
    import time

    pidfile = tmp_path / "converter.pid"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    starter = tmp_path / "starter.py"
    starter.write_text("import sys\nfrom pathlib import Path\nfrom harness.precision.conversion import run_converter\n"
                       f"run_converter([sys.executable, {str(sleeper)!r}], Path({str(tmp_path)!r}), 'sleeper')\n")
    proc = subprocess.Popen([sys.executable, str(starter)])
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.1)
    converter = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(50):
        try:
            os.kill(converter, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(converter, signal.SIGKILL)
    pytest.fail("the converter outlived the process that started it")
