"""``gankit report`` on tiny trained runs: the HTML itself (self-contained, every grid,
escaped, the numbers of the run's files), and the page in a real headless Chromium driven
over the Chrome DevTools Protocol (no console errors, every image decodes, the step
selector swaps the grid, the screenshot shows the grid's exact pixels)."""

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import api
from gankit.cli import main
from gankit.doctor import diagnose, format_diagnosis
from gankit.viz.curves import panels
from gankit.viz.report import CSP, data_uri, report_html, sample_grids, spread

TINY = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.log_interval=1", "train.sample_interval=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny runs: dcgan on digits (grids at steps 2, 4, 6), cgan on digits
    (conditional) and mixture_gan on the 2D ring (scatter plots)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    for name, preset, data, steps in (("dcgan", "dcgan", "digits", 6),
                                      ("cgan", "cgan", "digits", 4),
                                      ("ring", "mixture_gan", "ring", 4)):
        overrides = TINY if data == "digits" else TINY[3:]
        api.train(preset, data=data, steps=steps, out=root / name, overrides=overrides,
                  progress=False)
    torch.set_num_threads(threads)
    return root


def _copy(runs, name, dest: Path) -> Path:
    shutil.copytree(runs / name, dest)
    return dest


def _append(log: Path, record: dict) -> None:
    with log.open("a") as f:
        f.write(json.dumps(record) + "\n")


# -- the HTML ---------------------------------------------------------------------------
def test_report_is_self_contained_and_holds_every_grid(runs):
    page = report_html(runs / "dcgan")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.I)
    # every source the page names is inline data, and the CSP forbids any other
    sources = re.findall(r'\b(?:src|href)="([^"#]*)"', page)
    assert sources and all(s.startswith("data:") for s in sources), sources
    assert f'content="{CSP}"' in page and "default-src 'none'" in CSP
    grids = sample_grids(runs / "dcgan")
    assert [step for step, _ in grids] == [2, 4, 6]
    for _, path in grids:
        assert data_uri(path.read_bytes()) in page
    options = re.findall(r'<option value="(\d+)"( selected)?>step (\d+)</option>', page)
    assert options == [("0", "", "2"), ("1", "", "4"), ("2", " selected", "6")]
    shown = re.search(r'<img class="grid" id="sample-grid"[^>]* src="([^"]+)"', page)
    assert shown.group(1) == data_uri(grids[-1][1].read_bytes())  # the last step first


def test_spread_keeps_first_and_last_evenly_spaced():
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]  # round(i * 9 / 3)
    assert spread(list(range(10)), 3) == [0, 4, 9]  # 4.5 rounds half to even
    assert spread(list(range(5)), 1) == [4] and spread(list(range(5)), 0) == list(range(5))
    assert spread(list(range(3)), 7) == [0, 1, 2]


def test_report_max_grids(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(runs / "dcgan"), "--out", str(out), "--max-grids", "2"]) == 0
    page = out.read_text()
    grids = sample_grids(runs / "dcgan")
    assert [data_uri(p.read_bytes()) in page for _, p in grids] == [True, False, True]
    assert re.findall(r"<option [^>]*>step (\d+)</option>", page) == ["2", "6"]
    assert "2 of the 3 saved steps" in page
    assert main(["report", str(runs / "dcgan"), "--max-grids", "-1"]) == 2
    assert "--max-grids must be 0 (all) or more, got -1" in capsys.readouterr().err


def test_report_escapes_hostile_text(runs, tmp_path):
    run = _copy(runs, "dcgan", tmp_path / "run<i>x")
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(
        "preset: dcgan", 'preset: "</pre><script>alert(1)</script>"'))
    _append(run / "log.jsonl", {"step": 6, "warning": "loss_diverged",
                                "message": "<img src=x onerror=alert(2)>"})
    page = report_html(run)
    assert "alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # config and summary
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "run&lt;i&gt;x" in page and "run<i>x" not in page
    assert page.count("<script") == 2  # the grid data and the selector's code only


def test_report_shows_the_logged_and_evaluated_metrics_and_curves(runs, tmp_path):
    run = _copy(runs, "dcgan", tmp_path / "run")
    _append(run / "log.jsonl", {"step": 6, "fid_2k_digits_lenet_digits": 12.5})
    (run / "metrics").mkdir()
    (run / "metrics" / "eval_n100.json").write_text(json.dumps(
        {"fid_100_digits_lenet_digits": 3.25, "kid_100_digits_lenet_digits": 0.0123456789}))
    page = report_html(run)
    cell = '<td class="">{}</td>'
    assert f'<td class="key">6</td>{cell.format("12.5")}' in page  # the logged eval record
    assert ('<td class="key">kid_100_digits_lenet_digits</td>'
            + cell.format("0.0123457")) in page  # 6 significant digits
    assert "metrics/eval_n100.json" in page
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    groups = panels(records)
    assert [t for t, _ in groups][-1] == "fid_2k_digits_lenet_digits"
    assert page.count('<figure class="chart">') == len(groups) == 5
    # losses: one polyline per series with one point per training record (steps 1..6)
    losses = page.split('<figure class="chart">')[1]
    lines = re.findall(r'points="([^"]+)"><title>(loss/[DG])</title>', losses)
    assert [(name, len(points.split())) for points, name in lines] == [("loss/D", 6),
                                                                        ("loss/G", 6)]


def test_report_holds_the_doctors_diagnosis(runs):
    page = report_html(runs / "dcgan")
    assert html.escape(format_diagnosis(diagnose(runs / "dcgan"))) in page


def test_conditional_report_class_grid_is_gankit_sample_class_grid(runs, tmp_path):
    page = report_html(runs / "cgan")
    out = tmp_path / "classes.png"
    assert main(["sample", str(runs / "cgan"), "--class-grid", "--n", "8", "--seed", "0",
                 "--out", str(out)]) == 0
    grid = re.search(r'<img class="grid" id="class-grid"[^>]* src="([^"]+)"', page)
    assert grid.group(1) == data_uri(out.read_bytes())
    # 10 rows (classes) of 8 digits 8x8, padding 2, upscaled 4x: 4 * (10 * 10 + 2) high
    assert Image.open(out).height == 408
    assert "conditional on 10 classes" in page


def test_points_report_shows_scatter_plots_and_mixture_metrics(runs):
    page = report_html(runs / "ring")
    metrics = json.loads((runs / "ring" / "metrics.json").read_text())
    assert "Scatter plots of G's 2D samples (blue) over the real points" in page
    assert f'<td class="key">reverse_kl</td><td class="">{metrics["reverse_kl"]:.6g}</td>' in page
    assert 'id="classes"' not in page  # the ring's 8 labels do not make G conditional
    assert page.count('<option value=') == 2


def test_report_of_a_partial_run_says_what_is_missing(runs, tmp_path):
    run = tmp_path / "new"
    run.mkdir()
    shutil.copy(runs / "dcgan" / "config.yaml", run)
    page = report_html(run)
    missing = re.search(r'<div class="missing".*?</div>', page, re.S).group(0)
    assert "log.jsonl: no curves" in missing and "samples/step_*.png" in missing
    assert "checkpoints/: no complete checkpoint yet</li>" in missing  # dcgan: no class grid
    assert "<script" not in page and 'id="config-yaml"' in page


def test_report_cli(runs, tmp_path, capsys):
    run = _copy(runs, "dcgan", tmp_path / "run")
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out == f"wrote {run / 'report.html'}\n"
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "empty").mkdir()
    for bad, message in ((tmp_path / "empty", "not a gankit run"),
                         (tmp_path / "absent", "no such run directory")):
        assert main(["report", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and err.startswith("gankit: error:")
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


# -- the page in Chromium ---------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,900"]


@pytest.fixture(scope="session")
def chromium():
    """The path of Chromium; installed with apt-get when missing and we are root (about
    25 s; .ci/run installs it before the tests), else the browser tests are skipped."""
    pytest.importorskip("websocket", reason="the browser tests drive Chromium over CDP with "
                        "websocket-client: pip install 'gankit[test]'")
    path = shutil.which("chromium")
    if path is None and getattr(os, "geteuid", lambda: -1)() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "chromium"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed and cannot be (needs root and apt-get): "
                    "apt-get install chromium")
    return path


class DevTools:
    """Headless Chromium driven over the Chrome DevTools Protocol, one page."""

    def __init__(self, binary: str):
        import websocket

        self.profile = Path(tempfile.mkdtemp(prefix="gankit-chromium-"))
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = self.profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start (exit {self.proc.poll()})")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60,
                                              suppress_origin=True)
        self.next_id, self.events, self.session = 0, [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        # a fixed 1200 x 900 viewport at one device pixel per CSS pixel
        self.call("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors so far (what Selenium's browser log calls SEVERE): uncaught
        exceptions, console.error, and errors the browser logs (CSP, failed loads)."""
        self.js("0")  # a round trip: events sent before it have arrived
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(f"{details.get('text')} "
                           f"{details.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                out.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(params["entry"]["text"])
        return out

    def decoded_widths(self) -> list[int]:
        """naturalWidth of every <img> once decoded (0: it cannot be decoded)."""
        return self.js("Promise.all([...document.images].map("
                       "i => i.decode().then(() => i.naturalWidth, () => 0)))")

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code)

    def screenshot(self, clip: dict | None = None) -> np.ndarray:
        params = {"format": "png", **({"clip": {**clip, "scale": 1}} if clip else {})}
        png = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.call("Browser.close")
                self.ws.close()
        except Exception:  # closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(chromium):
    tools = DevTools(chromium)
    yield tools
    tools.close()


def test_browser_checks_can_fail(browser, tmp_path):
    """The detectors catch what they must: a blocked network image, a broken image and an
    exception, on a page under the report's CSP."""
    page = tmp_path / "control.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    f'content="{CSP}"></head><body><img src="http://127.0.0.1:9/x.png">'
                    '<img src="data:image/png;base64,AAAA">'
                    "<script>throw new Error('boom')</script></body></html>")
    browser.open(page.as_uri())
    errors = browser.errors()
    assert any("Content Security Policy" in e for e in errors)
    assert any("boom" in e for e in errors)
    assert browser.decoded_widths() == [0, 0]


@pytest.mark.parametrize("name", ["cgan", "ring"])
def test_reports_load_cleanly_in_chromium(browser, runs, tmp_path, name):
    out = api.report(runs / name, tmp_path / "report.html")
    browser.open(out.as_uri())
    assert browser.errors() == []
    widths = browser.decoded_widths()
    assert len(widths) == (2 if name == "cgan" else 1) and all(w > 0 for w in widths)


def test_report_in_chromium(browser, runs, tmp_path):
    out = api.report(runs / "dcgan", tmp_path / "report.html")
    grids = [data_uri(path.read_bytes()) for _, path in sample_grids(runs / "dcgan")]
    browser.open(out.as_uri())
    assert browser.errors() == []
    assert browser.decoded_widths() == [328]  # 8 x 8 digits of 8 px, padding 2, 4x
    src = "document.getElementById('sample-grid').src"
    caption = "document.getElementById('grid-caption').textContent"
    assert browser.js(src) == grids[2]
    # the <select>: choose step 2
    browser.js("const s = document.getElementById('step-select'); s.value = '0'; "
               "s.dispatchEvent(new Event('change'))")
    assert browser.js(src) == grids[0] and browser.js(caption) == "step 2 (1 of 3)"
    # the slider, with a real key press
    browser.js("document.getElementById('step-range').focus()")
    browser.key("ArrowRight", 39)
    assert browser.js(src) == grids[1] and browser.js(caption) == "step 4 (2 of 3)"
    assert browser.js("document.getElementById('step-select').value") == "1"
    assert browser.decoded_widths() == [328]
    # what is on screen: a page that is not blank, and the grid's exact pixels
    shot = browser.screenshot()
    assert shot.shape[:2] == (900, 1200) and shot.std() > 20
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 50
    x, y, w, h = browser.js("(() => { const r = document.getElementById('sample-grid')"
                            ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]"
                            " })()")
    inside = browser.screenshot({"x": x + 1, "y": y + 1, "width": w - 2, "height": h - 2})
    step_4, step_6 = (np.asarray(Image.open(path).convert("RGB"))
                      for _, path in sample_grids(runs / "dcgan")[1:])
    assert not np.array_equal(step_4, step_6)  # the pixels tell the steps apart
    np.testing.assert_array_equal(inside, step_4)
    assert browser.errors() == []
