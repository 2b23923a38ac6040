"""Training curves from a run's ``log.jsonl``: losses, D scores, gradient norms and metrics.

Drawn with matplotlib's object-oriented API on an Agg canvas (``matplotlib.figure.Figure``,
never ``pyplot``), so no GUI backend is needed and the caller's pyplot backend is left as it
was. matplotlib is imported only when a plot is drawn (``pip install 'gankit[plot]'``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from gankit.utils.extras import require
from gankit.utils.io import atomic_write_bytes, read_jsonl

# The figure is a grid of panels, each PANEL_SIZE inches at DPI, at most MAX_COLUMNS wide.
PANEL_SIZE = (5.0, 3.2)
DPI = 100
MAX_COLUMNS = 2
GROUPS = (("loss/", "losses"), ("scores/", "D scores (mean logits)"),
          ("grad/", "gradient norms"), ("health/", "training health"))
IGNORED = ("time/",)  # timing is not a training curve


def read_log(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/log.jsonl``, in file order (`gankit.utils.io.read_jsonl`:
    non-finite values read back as floats, a last line cut short dropped with a warning).

    Raises:
        ValueError: the log is missing, empty or corrupt before its last line.
    """
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        raise ValueError(f"{run_dir}: no log.jsonl: train first "
                         f"(gankit train PRESET --out {run_dir})")
    records = read_jsonl(path)
    if not records:
        raise ValueError(f"{path} holds no records yet: train first "
                         f"(records are written every train.log_interval steps)")
    return records


def panels(records: list[dict]) -> list[tuple[str, dict[str, tuple[list, list]]]]:
    """Group the logged series into panels.

    Returns:
        ``[(title, {key: (steps, values)})]``: losses, D scores and gradient norms (those
        logged), then one panel per other numeric key (metrics such as
        ``fid_2k_mnist5k_lenet_mnist5k``), in order of first appearance. ``step`` and
        ``time/*`` are left out; a key missing from a record is skipped at that step.
    """
    series: dict[str, tuple[list, list]] = {}
    for rec in records:
        step = rec.get("step")
        for key, value in rec.items():
            if key == "step" or key.startswith(IGNORED) or not _is_number(value):
                continue
            steps, values = series.setdefault(key, ([], []))
            steps.append(step)
            values.append(float(value))
    out = []
    for prefix, title in GROUPS:
        group = {k: v for k, v in sorted(series.items()) if k.startswith(prefix)}
        if group:
            out.append((title, group))
    grouped = tuple(prefix for prefix, _ in GROUPS)
    out += [(k, {k: v}) for k, v in series.items() if not k.startswith(grouped)]
    return out


def figure_size_px(num_panels: int) -> tuple[int, int]:
    """(width, height) in pixels of the curves PNG for ``num_panels`` panels."""
    cols = min(MAX_COLUMNS, num_panels)
    rows = math.ceil(num_panels / cols)
    return round(cols * PANEL_SIZE[0] * DPI), round(rows * PANEL_SIZE[1] * DPI)


def curves_png(run_dir: str | Path, out_png: str | Path) -> Path:
    """Plot a run's logged series against the generator step and write the PNG atomically.

    Panels (see ``panels``): loss/D and loss/G together, scores/real and scores/fake
    together, grad/D and grad/G together (log scale when all positive), then one panel per
    metric key. Layout: up to two panels per row, each 500 x 320 pixels
    (``figure_size_px``).

    Args:
        run_dir: a run directory holding ``log.jsonl``.
        out_png: the PNG to write.

    Returns:
        ``out_png`` as a Path.

    Raises:
        ValueError: no log, an empty log, or a log without numeric series.
        MissingExtraError: matplotlib is not installed (an ImportError naming the extra).
    """
    records = read_log(run_dir)
    groups = panels(records)
    if not groups:
        raise ValueError(f"{Path(run_dir) / 'log.jsonl'} has no numeric series to plot")
    require(("matplotlib",), "plot", "gankit show --curves")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(MAX_COLUMNS, len(groups))
    rows = math.ceil(len(groups) / cols)
    width, height = figure_size_px(len(groups))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (title, group) in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key, (steps, values) in group.items():
            ax.plot(steps, values, label=key, linewidth=1.2,
                    marker="o" if len(steps) < 20 else None, markersize=3)
        if title == dict(GROUPS)["grad/"] and all(v > 0 for s in group.values() for v in s[1]):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(which="both", labelsize=8)
        ax.grid(alpha=0.3)
        if len(group) > 1:
            ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    out_png = Path(out_png)
    atomic_write_bytes(out_png, buf.getvalue())
    return out_png


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
