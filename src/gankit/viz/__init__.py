"""Looking at a run, not only reading its numbers: the tools behind ``gankit show``.

- ``nearest_sheet``: generated images beside their nearest training images (copy check).
- ``interpolation_grids``: lerp and slerp walks between latents, and one-dimension traversals.
- ``style_mix_grid``: StyleGAN's style-mixing grid (coarse styles by row, fine by column).
- ``curves_png``: losses, D scores, gradient norms and metrics from ``log.jsonl``.
- ``write_report``: one self-contained HTML page about a run (``gankit report``), its curves
  drawn as inline SVG by ``line_chart``.

Every file is written atomically (``gankit.utils.io``). Nothing here is imported by
``import gankit``; matplotlib is needed only by ``curves_png``.
"""

from __future__ import annotations

from gankit.viz.curves import curves_png, read_log
from gankit.viz.latent import (
    angle,
    interpolation_grids,
    interpolation_images,
    latent_endpoints,
    latent_paths,
    lerp,
    slerp,
)
from gankit.viz.nearest import nearest_neighbours, nearest_sheet, read_distances, sheet_array
from gankit.viz.report import report_html, write_report
from gankit.viz.style_mix import style_mix_grid, style_mix_images
from gankit.viz.svg import line_chart, nice_ticks

__all__ = ["nearest_sheet", "nearest_neighbours", "sheet_array", "read_distances",
           "interpolation_grids", "interpolation_images", "latent_paths", "latent_endpoints",
           "lerp", "slerp", "angle", "curves_png", "read_log", "write_report", "report_html",
           "line_chart", "nice_ticks", "style_mix_grid", "style_mix_images"]
