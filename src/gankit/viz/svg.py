"""Line charts as inline SVG, with the standard library only: the curves of ``gankit report``.

One chart is one panel of `gankit.viz.curves.panels` (several series against the generator
step), so the report shows the same panels as ``gankit show --curves`` without matplotlib.
Axis ticks are "nice" numbers (1, 2, 2.5 or 5 times a power of ten, as most plotting
libraries choose them); a gradient panel whose values are all positive uses a log scale.
Non-finite values (a diverged loss logged as "nan") break the line and are counted in the
chart's caption. All text is XML-escaped, so a chart is well-formed XML.
"""

from __future__ import annotations

import math
from html import escape

# Tableau 10's first colours: distinct for the two to four series a panel holds.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 14, 30, 40
MARKER_MAX_POINTS = 20  # fewer points than this are also drawn as dots


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` evenly spaced round numbers covering [lo, hi]: the first tick is at or
    below ``lo``, the last at or above ``hi``, the spacing 1, 2, 2.5 or 5 times a power of
    ten. A single value (lo == hi) gets the ticks around it.

    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ValueError(f"nice_ticks needs finite lo <= hi, got {lo}, {hi}")
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    n = math.ceil(hi / step - 1e-9) - math.floor(lo / step + 1e-9)
    # round away float noise (0.30000000000000004) to the step's decimals
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    return [round(first + i * step, decimals) for i in range(n + 1)]


def decade_ticks(lo: float, hi: float) -> list[float]:
    """The whole powers of ten (as exponents) around [lo, hi] (log10 values): a log axis
    labelled 0.01, 0.1, 1, ... At least two ticks."""
    first, last = math.floor(lo), math.ceil(hi)
    return [float(e) for e in range(first, max(last, first + 1) + 1)]


def tick_label(value: float) -> str:
    """A tick's text: up to 4 significant digits, no trailing zeros (``0.25``, ``1e+04``)."""
    return f"{value:.4g}"


def line_chart(title: str, series: dict[str, tuple[list, list]], *, width: int = 480,
               height: int = 300, log_y: bool = False) -> str:
    """An SVG line chart of ``series`` against the step.

    Args:
        title: drawn above the plot.
        series: ``{name: (steps, values)}``, as `gankit.viz.curves.panels` groups them.
        width, height: the SVG's size in pixels; the plot area leaves MARGIN_* around it.
        log_y: a log10 y axis (values <= 0 are then left out like non-finite ones).

    Returns:
        ``<figure>`` markup holding the ``<svg>`` and a caption naming what was not drawn.
    """
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    drawn: dict[str, list[tuple[float, float] | None]] = {}
    skipped = 0
    for name, (steps, values) in series.items():
        points: list[tuple[float, float] | None] = []
        for step, value in zip(steps, values):
            ok = math.isfinite(value) and (value > 0 or not log_y)
            skipped += not ok
            points.append((float(step), math.log10(value) if log_y else value) if ok else None)
        drawn[name] = points
    finite = [p for points in drawn.values() for p in points if p is not None]
    # no xmlns: inline SVG in HTML needs none, and the page then names no URL at all
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="#fff"/>',
             f'<text x="{width / 2:g}" y="18" text-anchor="middle" font-size="13" '
             f'font-weight="bold">{escape(title)}</text>']
    if finite:
        xs, ys = [p[0] for p in finite], [p[1] for p in finite]
        x_ticks = nice_ticks(min(xs), max(xs))
        y_ticks = decade_ticks(min(ys), max(ys)) if log_y else nice_ticks(min(ys), max(ys))

        def px(x: float, y: float) -> tuple[float, float]:
            fx = (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])
            fy = (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])
            return MARGIN_LEFT + fx * plot_w, MARGIN_TOP + (1 - fy) * plot_h

        parts += _axes(x_ticks, y_ticks, px, log_y, width, height)
        for i, (name, points) in enumerate(drawn.items()):
            parts += _series(name, points, PALETTE[i % len(PALETTE)], px)
        if len(drawn) > 1:
            parts += _legend(list(drawn), width)
    else:
        parts.append(f'<text x="{width / 2:g}" y="{height / 2:g}" text-anchor="middle" '
                     'font-size="12" fill="#666">no finite values</text>')
    parts.append("</svg>")
    note = (f"<figcaption>{skipped} value{'s' if skipped != 1 else ''} not drawn "
            f"(non-finite{' or not positive on the log scale' if log_y else ''})"
            "</figcaption>" if skipped else "")
    return f'<figure class="chart">{"".join(parts)}{note}</figure>'


def _axes(x_ticks, y_ticks, px, log_y: bool, width: int, height: int) -> list[str]:
    """Grid lines, tick labels and the x axis title."""
    out = []
    for x in x_ticks:
        sx, _ = px(x, y_ticks[0])
        out.append(f'<line x1="{sx:.1f}" y1="{MARGIN_TOP}" x2="{sx:.1f}" '
                   f'y2="{height - MARGIN_BOTTOM}" stroke="#ddd"/>'
                   f'<text x="{sx:.1f}" y="{height - MARGIN_BOTTOM + 14}" text-anchor="middle" '
                   f'font-size="10">{tick_label(x)}</text>')
    for y in y_ticks:
        _, sy = px(x_ticks[0], y)
        label = tick_label(10.0 ** y) if log_y else tick_label(y)
        out.append(f'<line x1="{MARGIN_LEFT}" y1="{sy:.1f}" x2="{width - MARGIN_RIGHT}" '
                   f'y2="{sy:.1f}" stroke="#ddd"/>'
                   f'<text x="{MARGIN_LEFT - 4}" y="{sy + 3:.1f}" text-anchor="end" '
                   f'font-size="10">{label}</text>')
    out.append(f'<text x="{MARGIN_LEFT + (width - MARGIN_LEFT - MARGIN_RIGHT) / 2:g}" '
               f'y="{height - 6}" text-anchor="middle" font-size="11">step'
               f'{" (log-scale y)" if log_y else ""}</text>')
    return out


def _series(name: str, points, colour: str, px) -> list[str]:
    """One series: a polyline per finite stretch, dots when there are few points."""
    out, run = [], []
    for p in [*points, None]:
        if p is not None:
            run.append(px(*p))
            continue
        if len(run) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                       f'points="{coords}"><title>{escape(name)}</title></polyline>')
        run = []
    if len([p for p in points if p is not None]) < MARKER_MAX_POINTS:
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>'
                for x, y in (px(*p) for p in points if p is not None)]
    return out


def _legend(names: list[str], width: int) -> list[str]:
    # a translucent white box keeps the names readable over the lines
    out = [f'<rect x="{width - MARGIN_RIGHT - 154}" y="{MARGIN_TOP}" width="152" '
           f'height="{14 * len(names) + 4}" fill="#fff" fill-opacity="0.8"/>']
    for i, name in enumerate(names):
        y = MARGIN_TOP + 8 + 14 * i
        x = width - MARGIN_RIGHT - 150
        out.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + 14}" y="{y + 1}" font-size="10">{escape(name)}</text>')
    return out
