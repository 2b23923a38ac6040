"""``gankit report RUN``: one self-contained HTML page about a run.

The page holds the sample grids over training with a step selector, the curves of
``log.jsonl`` as inline SVG (`gankit.viz.svg`, the panels of `gankit.viz.curves.panels`),
the metrics evaluated during training and by ``gankit eval``, the diagnosis of
``gankit doctor`` (`gankit.doctor`), a grid of one row per class for a conditional run, and
the resolved ``config.yaml``. Images are inlined as base64 ``data:`` URIs and the CSS and
JavaScript are inline; a Content-Security-Policy forbids every other source, so the file
opens without a network and cannot load anything from one. Every text taken from the run is
HTML-escaped.

What a run lacks (no samples yet, no log, no checkpoint) is said on the page; a directory
with none of ``config.yaml``, ``log.jsonl`` and ``samples/step_*.png`` is refused.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from gankit.utils.io import atomic_write_text, read_jsonl

CLASS_GRID_PER_CLASS = 8  # samples per class row of a conditional run's class grid
MAX_GRIDS = 50  # sample grids inlined by default: a 28x28 MNIST grid is about 30 kB
_STEP_PNG = re.compile(r"^step_(\d+)\.png$")
# Only inline code and data: images; nothing can be fetched, not even by a mistake.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;
color:#222}
h1{font-size:1.5em;margin:16px 0 4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;
margin-top:32px}
nav a{margin-right:12px}.summary{color:#444}
.missing{background:#fff4e5;border:1px solid #f0b860;padding:8px 12px}
.missing li{margin:2px 0}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:13px}
.stepper{display:flex;gap:10px;align-items:center;margin:8px 0;flex-wrap:wrap}
.stepper input[type=range]{width:320px}
img.grid{image-rendering:pixelated;border:1px solid #ccc;max-width:100%}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0}
.chart figcaption{font-size:12px;color:#a33}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right;font-variant-numeric:tabular-nums}th{background:#f0f0f0}
td.key,th.key{text-align:left}
"""

SCRIPT = """
(function () {
  const grids = JSON.parse(document.getElementById('grid-data').textContent);
  const img = document.getElementById('sample-grid');
  const select = document.getElementById('step-select');
  const range = document.getElementById('step-range');
  const caption = document.getElementById('grid-caption');
  function show(i) {
    i = Math.max(0, Math.min(grids.length - 1, i));
    img.src = grids[i].src;
    img.alt = 'samples at step ' + grids[i].step;
    select.value = String(i);
    range.value = String(i);
    caption.textContent = 'step ' + grids[i].step + ' (' + (i + 1) + ' of ' +
      grids.length + ')';
  }
  select.addEventListener('change', function () { show(Number(select.value)); });
  range.addEventListener('input', function () { show(Number(range.value)); });
  document.getElementById('step-prev').addEventListener('click',
    function () { show(Number(select.value) - 1); });
  document.getElementById('step-next').addEventListener('click',
    function () { show(Number(select.value) + 1); });
})();
"""


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 class_grid: bool = True, device: str = "cpu",
                 max_grids: int = MAX_GRIDS) -> Path:
    """Write the report of ``run_dir`` as one self-contained HTML file (atomically).

    Args:
        run_dir: a run directory (finished, stopped or still training).
        out: the HTML file to write; default ``run_dir/report.html``.
        class_grid: for a conditional run with a checkpoint, draw a grid of
            CLASS_GRID_PER_CLASS samples per class from its newest checkpoint (on ``device``).
        device: where the class grid's samples are drawn.
        max_grids: inline at most this many sample grids, evenly spaced over the saved
            steps, the first and the last always among them (`spread`); 0: all of them.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: ``run_dir`` holds no run, ``out`` is a directory, or ``max_grids`` < 0.
    """
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name such as "
                         f"{out / 'report.html'}")
    html = report_html(run_dir, class_grid=class_grid, device=device, max_grids=max_grids)
    atomic_write_text(out, html)
    return out


def report_html(run_dir: str | Path, *, class_grid: bool = True, device: str = "cpu",
                max_grids: int = MAX_GRIDS) -> str:
    """The report of ``run_dir`` as an HTML document (see `write_report`)."""
    if max_grids < 0:
        raise ValueError(f"--max-grids must be 0 (all) or more, got {max_grids}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"report {run_dir}: no such run directory")
    config_path, log_path = run_dir / "config.yaml", run_dir / "log.jsonl"
    grids = sample_grids(run_dir)
    if not (config_path.is_file() or log_path.is_file() or grids):
        raise ValueError(f"report {run_dir}: not a gankit run (no config.yaml, log.jsonl or "
                         f"samples/step_*.png); train one with: gankit train PRESET "
                         f"--out {run_dir}")
    config_text = config_path.read_text() if config_path.is_file() else None
    config = _parse_config(config_text, config_path)
    missing = []
    if config_text is None:
        missing.append("config.yaml: the resolved config is not shown")
    records: list[dict] = []
    if not log_path.is_file():
        missing.append("log.jsonl: no curves, logged metrics or diagnosis")
    else:
        try:
            records = read_jsonl(log_path)
        except ValueError as exc:  # corrupt before its last line: say so, show the rest
            missing.append(f"a readable log.jsonl ({exc})")
        else:
            if not records:
                missing.append("log.jsonl holds no records yet (written every "
                               "train.log_interval steps): no curves, metrics or diagnosis")
    info = _data_info(run_dir)
    if not grids:
        missing.append("samples/step_*.png: no sample grids yet (written every "
                       "train.sample_interval steps and at the end)")
    if info is None:
        missing.append("checkpoints/: no complete checkpoint yet"
                       + (", so no class grid is drawn" if _conditioning(config) != "none"
                          else ""))

    sections = [
        ("samples", "Samples over training", _samples_section(grids, info, max_grids)),
        ("classes", "Class grid", _class_grid_section(run_dir, config, info, class_grid,
                                                      device)),
        ("curves", "Training curves", _curves_section(records)),
        ("evaluation", "Evaluation", _evaluation_section(run_dir, records)),
        ("doctor", "Diagnosis (gankit doctor)", _doctor_section(run_dir, records)),
        ("config", "Config", _config_section(config_text)),
    ]
    sections = [(key, title, body) for key, title, body in sections if body]
    return _page(run_dir, config, info, records, spread(grids, max_grids), missing, sections)


def spread(items: list, limit: int) -> list:
    """At most ``limit`` of ``items`` (all when ``limit`` is 0), evenly spaced, the first and
    the last among them: indices round(i * (n - 1) / (limit - 1)).

    >>> spread(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    n = len(items)
    if limit == 0 or n <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    return [items[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


def sample_grids(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of ``run_dir/samples/step_*.png``, by step."""
    folder = Path(run_dir) / "samples"
    if not folder.is_dir():
        return []
    found = ((_STEP_PNG.match(p.name), p) for p in folder.iterdir() if p.is_file())
    return sorted((int(m.group(1)), p) for m, p in found if m)


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# -- sections ---------------------------------------------------------------------------
def _page(run_dir, config, info, records, grids, missing, sections) -> str:
    from gankit import __version__

    facts = []
    if config:
        data = (config.get("data") or {}).get("name")
        facts += [f"preset {config.get('preset')}", f"data {data}"]
        total = (config.get("train") or {}).get("steps")
        if total is not None:
            facts.append(f"{total} steps configured")
    train_records = [r for r in records if _is_training(r)]
    if train_records:
        facts.append(f"logged up to step {train_records[-1].get('step')}")
    if info is not None:
        facts.append(f"{info.kind} {'x'.join(str(s) for s in info.sample_shape)}")
        if info.num_classes and _conditioning(config) != "none":
            facts.append(f"conditional on {info.num_classes} classes")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts.append(f"report by gankit {__version__}, {stamp}")
    head = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request
        f"<title>gankit report: {escape(run_dir.name or str(run_dir))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>gankit report: <code>{escape(str(run_dir))}</code></h1>",
        f'<p class="summary">{escape(", ".join(facts))}</p>',
        "<nav>" + "".join(f'<a href="#{key}">{escape(title)}</a>'
                          for key, title, _ in sections) + "</nav>",
    ]
    if missing:
        head.append('<div class="missing" id="missing"><strong>Missing from this run:</strong>'
                    "<ul>" + "".join(f"<li>{escape(m)}</li>" for m in missing) + "</ul></div>")
    body = [f'<section id="{key}"><h2>{escape(title)}</h2>{html}</section>'
            for key, title, html in sections]
    tail = []
    if grids:
        payload = json.dumps([{"step": step, "src": data_uri(path.read_bytes())}
                              for step, path in grids])
        # "</" would end the script element early; JSON allows "<\/" for it
        tail.append('<script type="application/json" id="grid-data">'
                    f'{payload.replace("</", "<" + chr(92) + "/")}</script>')
        tail.append(f"<script>{SCRIPT}</script>")
    return "\n".join([*head, *body, *tail, "</body></html>"]) + "\n"


def _samples_section(all_grids, info, max_grids: int) -> str:
    if not all_grids:
        return ("<p>No sample grids yet: <code>samples/step_*.png</code> are written every "
                "<code>train.sample_interval</code> steps and at the end of training.</p>")
    grids = spread(all_grids, max_grids)
    shown = (f"{len(grids)} of the {len(all_grids)} saved steps (evenly spaced; "
             f"<code>--max-grids 0</code> shows all)" if len(grids) < len(all_grids) else
             f"each of the {len(grids)} saved step{'s' if len(grids) > 1 else ''}")
    last = len(grids) - 1
    step, path = grids[last]
    if info is not None and info.kind == "points":
        what = "Scatter plots of G's 2D samples (blue) over the real points (grey)"
    else:
        what = ("Grids of G's samples of fixed latents (G_ema when the run keeps one; one "
                "class per column for a conditional run)")
    options = "".join(f'<option value="{i}"{" selected" if i == last else ""}>step {s}</option>'
                      for i, (s, _) in enumerate(grids))
    return (f"<p>{what} at {shown}.</p>"
            '<div class="stepper">'
            '<button type="button" id="step-prev">&larr;</button>'
            f'<label>step <select id="step-select">{options}</select></label>'
            '<button type="button" id="step-next">&rarr;</button>'
            f'<input type="range" id="step-range" min="0" max="{last}" value="{last}" '
            'aria-label="step">'
            f'<span id="grid-caption">step {step} ({last + 1} of {len(grids)})</span></div>'
            f'<img class="grid" id="sample-grid" alt="samples at step {step}" '
            f'src="{data_uri(path.read_bytes())}">')


def _class_grid_section(run_dir: Path, config, info, enabled: bool, device: str) -> str:
    if _conditioning(config) == "none" or (info is not None and not info.num_classes):
        return ""
    if not enabled:
        return "<p>Not drawn (class_grid=False).</p>"
    if info is None:
        return "<p>Not drawn: the run has no complete checkpoint to sample from yet.</p>"
    from gankit import api

    try:
        run = api.load(run_dir, device)
    except ValueError as exc:  # e.g. non-finite weights: say why, keep the rest
        return f"<p>Not drawn: {escape(str(exc))}</p>"
    if not run.conditional:
        return ""
    labels = api.class_grid_labels(run, CLASS_GRID_PER_CLASS)
    x = api.sample(run, len(labels), classes=labels, seed=0, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        path = api.write_samples(x, Path(tmp) / "classes.png", run.info.kind,
                                 nrow=CLASS_GRID_PER_CLASS,
                                 row_labels=[str(k) for k in range(run.info.num_classes)])
        png = path.read_bytes()
    clusters = ((config or {}).get("self_condition") or {}).get("clusters")
    what = "classes" + (" (self_condition's k-means clusters)" if clusters else "")
    return (f"<p>{CLASS_GRID_PER_CLASS} samples of each of the {run.info.num_classes} {what} "
            f"(one row per class, seed 0), drawn from the checkpoint of step {run.step} "
            f"({'G_ema' if run.G_ema is not None else 'G'}): <code>gankit sample "
            f"{escape(str(run_dir))} --class-grid --n {CLASS_GRID_PER_CLASS} --out "
            "FILE.png</code> draws the same.</p>"
            f'<img class="grid" id="class-grid" alt="one row per class" src="{data_uri(png)}">')


def _curves_section(records: list[dict]) -> str:
    from gankit.viz.curves import GROUPS, panels
    from gankit.viz.svg import line_chart

    if not records:
        return "<p>No curves: log.jsonl is missing, empty or unreadable.</p>"
    groups = panels(records)
    if not groups:
        return "<p>No numeric series in the log.</p>"
    charts = []
    for title, group in groups:
        log_y = (title == dict(GROUPS)["grad/"]
                 and all(v > 0 for _, values in group.values() for v in values))
        charts.append(line_chart(title, group, log_y=log_y))
    return ("<p>Every series of <code>log.jsonl</code> against the generator step (timings "
            'left out); hover a line for its name.</p><div class="charts">'
            + "".join(charts) + "</div>")


def _evaluation_section(run_dir: Path, records: list[dict]) -> str:
    parts = []
    metric_records = [r for r in records if not _is_training(r) and "warning" not in r]
    if metric_records:
        keys = list(dict.fromkeys(k for r in metric_records for k in r if k != "step"))
        rows = [[r.get("step"), *(r.get(k) for k in keys)] for r in metric_records]
        parts.append("<h3>Evaluated during training (eval.interval)</h3>"
                     + _table(["step", *keys], rows))
    end = run_dir / "metrics.json"
    files = ([end] if end.is_file() else []) + sorted((run_dir / "metrics").glob("*.json"))
    for path in files:
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parts.append(f"<p>{escape(str(path))}: unreadable ({escape(str(exc))})</p>")
            continue
        if not isinstance(results, dict):
            continue
        what = ("mixture metrics at the end of training (2,500 samples, PacGAN protocol)"
                if path == end else "gankit eval")
        parts.append(f"<h3><code>{escape(str(path.relative_to(run_dir)))}</code>: "
                     f"{escape(what)}</h3>"
                     + _table(["metric", "value"], [[k, v] for k, v in results.items()]))
    if not parts:
        return ("<p>No evaluation yet: set <code>eval.interval</code> to evaluate during "
                f"training, or run <code>gankit eval {escape(str(run_dir))}</code> "
                "(results go to <code>metrics/*.json</code>).</p>")
    return "".join(parts)


def _doctor_section(run_dir: Path, records: list[dict]) -> str:
    from gankit.doctor import diagnose, format_diagnosis

    if not records:
        return "<p>No diagnosis: log.jsonl is missing, empty or unreadable.</p>"
    try:
        text = format_diagnosis(diagnose(run_dir))
    except ValueError as exc:
        return f"<p>No diagnosis: {escape(str(exc))}</p>"
    warnings = [r for r in records if "warning" in r]
    logged = ""
    if warnings:
        logged = ("<h3>Warnings logged during training</h3><ul>"
                  + "".join(f"<li>step {escape(str(r.get('step')))}: "
                            f"{escape(str(r.get('message', r['warning'])))}</li>"
                            for r in warnings) + "</ul>")
    return f'<pre id="diagnosis">{escape(text)}</pre>{logged}'


def _config_section(config_text: str | None) -> str:
    if config_text is None:
        return "<p>No config.yaml in the run directory.</p>"
    return f'<pre id="config-yaml">{escape(config_text)}</pre>'


# -- helpers ----------------------------------------------------------------------------
def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f'<th class="{"key" if i == 0 else ""}">{escape(str(h))}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"key" if i == 0 else ""}">'
                                    f"{escape(_cell(v))}</td>" for i, v in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _conditioning(config: dict | None) -> str:
    """The generator's ``conditioning`` option in a config.yaml ("none" when unknown)."""
    options = ((config or {}).get("generator") or {}).get("options") or {}
    return str(options.get("conditioning") or "none")


def _is_training(record: dict) -> bool:
    from gankit.training.health import is_training_record

    return is_training_record(record)


def _parse_config(text: str | None, path: Path) -> dict | None:
    """config.yaml as plain data; None when missing or unreadable (the page still shows
    its text)."""
    if text is None:
        return None
    from gankit.config import load_yaml

    try:
        data = load_yaml(text, str(path))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _data_info(run_dir: Path):
    """The DataInfo (kind, sample shape, classes) of the newest complete checkpoint, read
    from its safetensors header only; None without a checkpoint."""
    from safetensors import safe_open

    from gankit.training.checkpoint import list_checkpoints
    from gankit.training.state import DataInfo

    paths = list_checkpoints(run_dir, quiet=True)
    if not paths:
        return None
    try:
        with safe_open(str(paths[-1].with_suffix(".safetensors")), framework="pt") as f:
            meta = f.metadata() or {}
        return DataInfo.from_dict(json.loads(meta["data_info"]))
    except (OSError, KeyError, ValueError):
        return None
