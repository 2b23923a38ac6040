"""gankit.viz.svg: nice tick values and the pixel positions of a line chart, by hand."""

import math
import xml.etree.ElementTree as ET

import pytest

from gankit.viz.svg import (
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    MARGIN_TOP,
    decade_ticks,
    line_chart,
    nice_ticks,
)


@pytest.mark.parametrize("lo, hi, ticks", [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # raw step 0.2
    (1.0, 4.0, [1.0, 2.0, 3.0, 4.0]),  # raw 0.6 -> 1
    (0.6, 1.4, [0.6, 0.8, 1.0, 1.2, 1.4]),  # raw 0.16 -> 0.2
    (-0.005, 0.0098, [-0.005, 0.0, 0.005, 0.01]),  # raw 0.00296 -> 0.005
    (0.0, 10_000.0, [0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10_000.0]),
    (3.0, 3.0, [2.6, 2.8, 3.0, 3.2, 3.4]),  # one value: +-10 % around it, raw 0.12 -> 0.2
    (0.0, 0.0, [-1.0, -0.5, 0.0, 0.5, 1.0]),  # zero: +-1, raw 0.4 -> 0.5
])
def test_nice_ticks(lo, hi, ticks):
    assert nice_ticks(lo, hi) == ticks


def test_nice_ticks_refuse_non_finite():
    with pytest.raises(ValueError, match="finite lo <= hi"):
        nice_ticks(0.0, math.nan)


def test_decade_ticks():
    assert decade_ticks(math.log10(0.012), math.log10(0.4)) == [-2.0, -1.0, 0.0]
    assert decade_ticks(0.0, 0.0) == [0.0, 1.0]  # at least two ticks


def _plot_box(width, height):
    return (MARGIN_LEFT, MARGIN_TOP, width - MARGIN_LEFT - MARGIN_RIGHT,
            height - MARGIN_TOP - MARGIN_BOTTOM)


def _polylines(svg_figure: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg_figure)  # also proves the chart is well-formed XML
    return [[tuple(float(v) for v in pair.split(",")) for pair in line.get("points").split()]
            for line in root.iter("polyline")]


def test_line_chart_positions_points_by_hand():
    # x ticks 0..10 (step 2), y ticks 0..1 (step 0.2): the box's corners are the data's
    left, top, w, h = _plot_box(400, 200)  # 60, 30, 326, 130
    svg = line_chart("losses", {"loss/D": ([0, 5, 10], [0.0, 0.5, 1.0])}, width=400,
                     height=200)
    assert _polylines(svg) == [[(left, top + h), (left + w / 2, top + h / 2), (left + w, top)]]
    assert (left, top, w, h) == (60, 30, 326, 130)


def test_line_chart_log_scale_and_non_finite_gap():
    # y = 0.01, 0.1, nan, 1 on a log axis: decades -2..0; the NaN splits the line in two
    left, top, w, h = _plot_box(480, 300)
    svg = line_chart("gradient norms", {"grad/D": ([0, 1, 2, 3], [0.01, 0.1, math.nan, 1.0])},
                     log_y=True)
    x = [left + w * s / 3 for s in range(4)]  # x ticks 0..3 (step 0.5)
    assert _polylines(svg) == [[(round(x[0], 1), top + h), (round(x[1], 1), top + h / 2)]]
    # the lone point after the gap is a dot, not a line; the caption counts the NaN
    dots = [(float(c.get("cx")), float(c.get("cy"))) for c in ET.fromstring(svg).iter("circle")]
    assert (round(x[3], 1), top) in dots
    assert "1 value not drawn" in svg


def test_line_chart_escapes_names():
    svg = line_chart("<b>t</b>", {"a<&>": ([0, 1], [1.0, 2.0]), "b": ([0, 1], [2.0, 3.0])})
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("text")]
    assert "<b>t</b>" in texts and "a<&>" in texts  # escaped in the markup, intact as text
    assert "<b>" not in svg


def test_line_chart_without_finite_values():
    svg = line_chart("losses", {"loss/D": ([0, 1], [math.nan, math.inf])})
    assert "no finite values" in svg and "2 values not drawn" in svg
    assert _polylines(svg) == []
