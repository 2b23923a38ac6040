"""Metric maths: every public module registers one metric in ``METRICS``; ``features/`` holds
the feature extractors (``EXTRACTORS``); ``psnr`` and ``ssim`` (``_fidelity``) compare
restored images with their ground truth. Private (``_``) modules hold shared code;
``_cache`` keeps the real data's features (`gankit.evaluation` runs the metrics). See
``_common`` for the calling convention of a registered metric.
"""

from __future__ import annotations

from gankit._autoimport import import_submodules
from gankit.metrics._common import Metric, format_count, protocol_key
from gankit.metrics._fidelity import psnr, ssim
from gankit.metrics.density_coverage import density_coverage
from gankit.metrics.fid import feature_stats, frechet_distance
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kernel_inception_distance, polynomial_mmd2
from gankit.metrics.kmeans_diversity import kmeans_diversity
from gankit.metrics.memorization import memorization, memorization_ratios
from gankit.metrics.mixture import mixture_metrics
from gankit.metrics.modes import mode_counts
from gankit.metrics.precision_recall import precision_recall

MODULES = import_submodules(__name__, __path__)

__all__ = [
    "Metric",
    "density_coverage",
    "feature_stats",
    "format_count",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "kmeans_diversity",
    "memorization",
    "memorization_ratios",
    "mixture_metrics",
    "mode_counts",
    "polynomial_mmd2",
    "precision_recall",
    "psnr",
    "ssim",
    "protocol_key",
]
