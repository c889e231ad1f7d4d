"""The HTML report in a real headless Chromium (Debian's package, driven by Playwright; no browser download):
no console errors, every chart drawn with its points, hover names the run, filters hide points, the table sorts."""
import re
import shutil

import pytest

from harness.analysis.report import analyse, write_report

from tests.analysis.conftest import make_csv, row

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium; make test "
                                                         "installs it as root)")
HW = ["this-machine", "h100"]


def _row(model, precision, backend, library, decode, acc, kld, wbytes, **kw):
    r = row(model, precision, decode, decode * 20 if decode else None, acc, kld, wbytes, **kw)
    r.update(engine=backend, library=library, ttft_ms_p90=120.0, tpot_ms_p99=15.0, source_weights="fp32 test baseline",
             kv_bytes_per_token=46080 if decode else None,
             timestamp="2026-11-28T10:00:00+00:00", cpu="Test CPU", torch_version="2.13.0")
    return r


@pytest.fixture
def report(tmp_path):
    rows = [
        _row("m1", "fp32", "torch", "torch 2.13.0", 20, 0.50, 0.0, 4e8),
        _row("m1", "torchao-int8wo", "hf", "torchao 0.18.0", 25, 0.49, 0.01, 1.2e8),
        _row("m1", "gguf-q4_0", "llamacpp", "llama-cpp-python 0.3.36", 60, 0.45, 0.10, 0.6e8),
        _row("m2", "fp32", "torch", "torch 2.13.0", 10, 0.60, 0.0, 8e8),
        _row("m2", "gguf-q8_0", "llamacpp", "llama-cpp-python 0.3.36", 40, 0.59, 0.005, 2.2e8),
        _row("m2", "gptq-4bit", "torch", "gptqmodel", None, None, None, None, status="unavailable",
             error="needs cuda"),
    ]
    csv = make_csv(tmp_path / "sweep.csv", rows)
    from harness.record.curves import append_curve

    for r in rows:
        if r["status"] == "ok":
            append_curve(csv, r["run_id"], [{"concurrency": c, "decode_tok_s": r["decode_tok_s"] * c ** 0.5,
                                             "tpot_ms_p50": 10.0 * c ** 0.3, "ttft_ms_p99": 100.0 * c,
                                             "tpot_ms_p99": 15.0 * c ** 0.3, "prefill_tok_s": 500.0}
                                            for c in (1, 4, 16)])
    write_report(csv, tmp_path / "out", HW)
    return tmp_path / "out" / "sweep.html", analyse(csv, HW)


@pytest.fixture
def page(report):
    path, _ = report
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(path.resolve().as_uri())
        pg.wait_for_selector("body[data-ready='1']", timeout=60000)
        pg.errors = errors
        yield pg
        browser.close()


def _points(pg, chart: str) -> int:
    """Markers and bars actually drawn in the chart's SVG."""
    return pg.evaluate("id => document.getElementById(id).querySelectorAll('.scatterlayer .points path, "
                       ".barlayer .point').length", chart)


def test_page_is_self_contained_and_small(report):
    path, _ = report
    text = path.read_text()
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*\bhref=", text)  # nothing fetched: plotly.js is inline
    assert "Plotly" in text and path.stat().st_size < 10e6


def test_every_chart_renders_its_points_without_console_errors(page, report, tmp_path):
    _, a = report
    ok = len(a.ok)
    assert page.errors == []
    expected = {"speed-bits": ok, "memory-bits": ok, "memory-quality": len(a.ok_q), "latency-ttft": ok,
                "latency-tpot": ok, "cost-this-machine-batch1": len(a.ok_q), "load-curves": 3 * ok,  # 3 levels
                "capacity-quality": len(a.ok_q)}
    for chart, n in expected.items():
        assert _points(page, chart) == n, chart
    page.select_option("#hw", "this-machine · offline")
    assert page.locator("section.hw[data-hw='this-machine · offline']").is_visible()
    assert not page.locator("section.hw[data-hw='this-machine · batch1']").is_visible()
    assert "h100" in page.locator("body").text_content()  # named as not priced: no rows measured on it
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 20000


def test_hovering_a_point_shows_its_run_id(page):
    page.locator("#speed-bits").scroll_into_view_if_needed()
    x, y = page.evaluate("""runId => {
        const gd = document.getElementById('speed-bits');
        for (const t of gd.data) {
            const i = (t.customdata || []).indexOf(runId);
            if (i < 0) continue;
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(xa.d2l(t.x[i])), box.top + ya._offset + ya.l2p(ya.d2l(t.y[i]))];
        }
    }""", "m1-gguf-q4_0")
    page.mouse.move(x, y)
    page.wait_for_selector("#speed-bits .hoverlayer .hovertext", timeout=5000)
    assert "run_id: m1-gguf-q4_0" in page.locator("#speed-bits .hoverlayer").text_content()


def test_a_filter_hides_the_other_models_points(page, report):
    _, a = report
    page.uncheck("input[data-filter=model][value=m2]")
    m1 = int((a.ok["model"] == "m1").sum())
    assert _points(page, "speed-bits") == m1 and _points(page, "latency-tpot") == m1
    shown = page.evaluate("() => document.getElementById('speed-bits').data.flatMap(t => t.customdata || [])")
    assert shown and all(r.startswith("m1-") for r in shown)
    visible = page.evaluate("() => Array.from(document.querySelectorAll('#runs tbody tr')).filter(r => !r.hidden)"
                            ".map(r => r.dataset.run)")
    assert visible and all(r.startswith("m1-") for r in visible)


def test_the_table_sorts_by_a_column(page):
    header = page.locator("#runs th", has_text=re.compile(r"^decode tok/s$"))
    col = int(header.get_attribute("data-col"))

    def column():
        return page.evaluate("c => Array.from(document.querySelectorAll('#runs tbody tr'))"
                             ".map(r => r.children[c].dataset.v).filter(v => v !== '').map(Number)", col)

    header.click()
    assert column() == sorted(column()) and len(column()) == 5
    header.click()
    assert column() == sorted(column(), reverse=True)


# a payload for each way text can become markup: an element with a handler, a script, the ends of a comment, of
# CDATA and of a script element, the page template's own placeholder, a Markdown code span and table cell
PWN = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>-->]]><!--BODY--></script>`|'


def _loaded(pg, path):
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(path.resolve().as_uri())
    return errors


def test_hostile_text_in_every_field_stays_text_in_the_page_and_in_the_rendered_markdown(tmp_path, monkeypatch):
    """Every text a user or a row supplies (model, scheme and library names, source weights, CPU name, an error, the
    CSV's file name, a hardware profile's description and price source) carries the payload; in Chromium neither the
    HTML page nor the Markdown report (rendered by markdown-it's CommonMark, which passes raw HTML through, as a
    permissive viewer does) runs it, and the page still draws every chart."""
    import yaml

    from harness.profiles import hardware

    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py not installed (pip install -e '.[test]')")
    conf = tmp_path / "hardware"
    conf.mkdir()
    for p in hardware.CONF.glob("*.yaml"):
        (conf / p.name).write_text(p.read_text())
    h100 = yaml.safe_load((conf / "h100.yaml").read_text())
    h100.update(description=PWN, price_source=PWN, price_as_of=PWN)
    (conf / "h100.yaml").write_text(yaml.safe_dump(h100))
    monkeypatch.setattr(hardware, "CONF", conf)
    name = PWN.replace("/", "").replace("|", "")
    rows = [_row(f"m{name}", "fp32", "torch", f"torch {PWN}", 20, 0.50, 0.0, 4e8),
            _row(f"m{name}", f"int8{name}", "torch", PWN, 25, 0.49, 0.01, 1.2e8),
            _row("m2", "fp32", "torch", "torch 2.13.0", 10, 0.60, 0.0, 8e8),
            _row("m2", f"gptq{name}", "torch", "x", None, None, None, None, status="failed", error=PWN)]
    for r in rows:
        r.update(source_weights=PWN, cpu=PWN)
    csv = make_csv(tmp_path / f"sweep{name[:40]}.csv", rows)
    md = write_report(csv, tmp_path / "out", HW)
    page = tmp_path / "out" / f"{csv.stem}.html"
    rendered = tmp_path / "out" / "markdown-rendered.html"
    rendered.write_text(markdown_it.MarkdownIt("commonmark").render(md.read_text()))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = _loaded(pg, page)
        pg.wait_for_selector("body[data-ready='1']", timeout=60000)
        assert pg.evaluate("() => window.__pwned") is None and errors == []
        assert pg.evaluate("() => document.querySelectorAll('[onerror], img[src=x]').length") == 0
        assert _points(pg, "speed-bits") == 3  # the page's own script ran whole
        assert "window.__pwned=1" in pg.locator("body").text_content()  # the payload shown as text
        md_page = browser.new_page()
        _loaded(md_page, rendered)
        md_page.wait_for_load_state("load")
        assert md_page.evaluate("() => window.__pwned") is None
        assert md_page.evaluate("() => document.querySelectorAll('script, [onerror], img[src=x]').length") == 0
        assert "window.__pwned=1" in md_page.locator("body").text_content()
        browser.close()
