"""Text from a results file or a profile is shown as text: markup in every text field (model, precision, engine,
error, environment, hardware price source) creates no element in Chromium and appears literally; the Markdown report
escapes it (a CommonMark renderer would run it) and a `|` or newline adds no table row; a profile whose name is not a
plain name is refused."""
import shutil

import pytest

from harness.analysis.report import write_report
from tests.analysis.conftest import make_csv, row

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MARKUP = {"model": "<b id=inj1>m1</b>", "precision": '<a id=inj2 href="#">fp32</a>',
          "engine": '<span id=inj3 style="color:red">torch</span>', "error": "<img id=inj4 src=x onerror=alert(1)>|x\nfake",
          "cpu": "<script id=inj5>window.pwned = 1</script>", "library": "<i id=inj6>lib</i>"}


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    import harness.profiles.hardware as hardware

    conf = tmp_path / "hardware"
    conf.mkdir()
    (conf / "this-machine.yaml").write_text(
        "name: this-machine\nusd_per_hour: 1.0\nmemory_gb: 4\ndevice: cpu\ndevice_match: null\n"
        "price_source: \"<script id=inj7>window.pwned = 2</script>\"\nprice_as_of: \"<u id=inj8>2024</u>\"\n")
    monkeypatch.setattr(hardware, "CONF", conf)
    ok = row(MARKUP["model"], MARKUP["precision"], 20, 400, 0.5, 0.0, 4e8)
    ok.update(engine=MARKUP["engine"], library=MARKUP["library"], cpu=MARKUP["cpu"], device_name=MARKUP["cpu"],
              source_weights="<em id=inj9>base</em>")
    other = row(MARKUP["model"], "int8", 40, 500, 0.49, 0.01, 1e8)
    other.update(engine=MARKUP["engine"], cpu=MARKUP["cpu"])
    bad = row("m2", "x", None, None, None, None, None, status="failed", error=MARKUP["error"])
    csv = make_csv(tmp_path / "hostile.csv", [ok, other, bad])
    md = write_report(csv, tmp_path / "out", ["this-machine"]).read_text()
    return tmp_path / "out" / "hostile.html", md


def test_markdown_cells_are_text(hostile):
    _, md = hostile
    assert "<b id=inj1>" not in md and "&lt;b id=inj1>m1&lt;/b>" in md and "<img" not in md  # no tag can open
    failed = [ln for ln in md.splitlines() if "onerror" in ln]
    assert len(failed) == 1 and "\\|x fake" in failed[0]  # one row: the | escaped, the newline folded


@pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium)")
def test_no_element_is_created_and_the_text_shows(hostile):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    path, _ = hostile
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page()
        pg.goto(path.resolve().as_uri())
        pg.wait_for_selector("body[data-ready='1']", timeout=60000)
        made = pg.evaluate("() => [...Array(9).keys()].map(i => 'inj' + (i + 1)).filter(id => document.getElementById(id))")
        pwned = pg.evaluate("() => window.pwned === undefined ? null : window.pwned")
        text = pg.evaluate("() => document.body.innerText")
        legend = pg.evaluate("() => [...document.querySelectorAll('.legendtext')].map(e => e.textContent).join(' ')")
        browser.close()
    assert made == [] and pwned is None
    assert "<b id=inj1>m1</b>" in text and "<img id=inj4" in text and "<script id=inj7>" in text
    assert "<span id=inj3" in legend  # plotly draws the legend entry as the literal text


def test_a_profile_name_that_is_not_plain_is_refused(tmp_path, monkeypatch):
    import harness.profiles.hardware as hardware

    conf = tmp_path / "hardware"
    conf.mkdir()
    (conf / "evil.yaml").write_text("name: \"<script>x</script>\"\nusd_per_hour: 1\n")
    (conf / "broken.yaml").write_text("name: broken\nusd_per_hour: [1\n")
    (conf / "noprice.yaml").write_text("name: noprice\n")
    (conf / "text.yaml").write_text("name: text\nusd_per_hour: cheap\n")
    monkeypatch.setattr(hardware, "CONF", conf)
    for name, message in (("evil", "must be a plain name"), ("broken", "hardware/broken.yaml is not valid YAML (line"),
                          ("noprice", "missing key 'usd_per_hour'"), ("text", "usd_per_hour='cheap' is not a number"),
                          ("../slo/server", "a plain name of conf/hardware/")):
        with pytest.raises((ValueError, KeyError), match=message.replace("(", r"\(").replace(".", r"\.")):
            hardware.load_hardware(name)
