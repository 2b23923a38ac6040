"""Self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned
GANs"): class-conditional training on labels that come from clustering the real data in
D's feature space, without any annotation.

The real data is clustered into K groups by k-means on D's features; G and D are trained
as a conditional GAN on those cluster labels, and G's labels are drawn in proportion to the
cluster sizes. Every ``interval`` generator steps the data is clustered again with the
current D. A new clustering starts from the old clusters' means in the new feature space,
so cluster k keeps meaning roughly the same group and the embeddings G and D learned for k
stay useful. Because every cluster must be generated as often as it occurs in the data, a
generator that drops or under-draws part of the data is told so through the conditioning.

D's features (``D.body``, in eval mode so BatchNorm uses its running statistics) are
projected by a fixed Gaussian matrix to ``dim`` dimensions before k-means (Johnson and
Lindenstrauss: distances are kept up to a small factor), so k-means itself is cheap next
to D's forward pass over the data (about 35 s in all for 50,000 Stacked MNIST images at
width 128 on one CPU thread).
"""

from __future__ import annotations

import time

import torch
from sklearn.cluster import KMeans

from gankit.data._sampler import epoch_seed
from gankit.sampling import eval_mode


def kmeans(f: torch.Tensor, k: int, *, init: torch.Tensor | None = None, iters: int = 30,
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on the rows of ``f`` [N, F] with scikit-learn's ``KMeans`` (already
    behind the ``kmeans_diversity`` metric): (labels [N] int64, centres [k, F]).

    ``init`` [k, F] starts from given centres; otherwise k-means++ seeding (Arthur and
    Vassilvitskii 2007) seeded by ``seed``. A cluster that empties is moved to a point far
    from its centre. At most ``iters`` iterations.
    """
    n = f.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= N points, got k={k} for N={n}")
    # float64: float32 centres drift from the exact member means by more than rounding
    start = init.detach().cpu().double().numpy() if init is not None else "k-means++"
    km = KMeans(k, init=start, n_init=1, max_iter=max(iters, 1), random_state=seed % 2**32)
    km.fit(f.detach().cpu().double().numpy())
    return torch.from_numpy(km.labels_).long(), torch.from_numpy(km.cluster_centers_).float()


class SelfConditioner:
    """Clusters real data with D's features for `self_condition` (see the module doc).

    Args:
        clusters: K, the number of clusters (G's and D's classes).
        dim: D's features are projected to this many dimensions (0 = no projection).
        iters: at most this many Lloyd iterations per clustering.
        seed: seeds the projection and the k-means++ draws (never the training RNG).
    """

    def __init__(self, clusters: int, dim: int = 512, iters: int = 30, seed: int = 0,
                 batch_size: int = 1000) -> None:
        self.clusters, self.dim, self.iters, self.seed = clusters, dim, iters, seed
        self.batch_size = batch_size
        self._proj: torch.Tensor | None = None

    @torch.no_grad()
    def features(self, D, x) -> torch.Tensor:
        """D's body features of every row of ``x`` [N, ...] (a tensor, or a streamed image
        store read block by block), projected: [N, dim]."""
        out = []
        device = x.device if isinstance(x, torch.Tensor) else next(
            D.parameters(), torch.empty(0)).device  # a store's rows go to D's device
        with eval_mode(D):
            for start in range(0, len(x), self.batch_size):
                xb = x[start:start + self.batch_size].to(device)
                out.append(self._project(D.body(xb).flatten(1)).float().cpu())
        return torch.cat(out)

    def _project(self, f: torch.Tensor) -> torch.Tensor:
        if not self.dim or self.dim >= f.shape[1]:
            return f
        if self._proj is None or self._proj.shape[0] != f.shape[1]:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, 0x5C))
            self._proj = torch.randn(f.shape[1], self.dim, generator=gen) / self.dim ** 0.5
        self._proj = self._proj.to(f.device, f.dtype)  # moved once, kept there
        return f @ self._proj

    def cluster(self, D, x, step: int,
                previous: torch.Tensor | None = None) -> torch.Tensor:
        """Cluster labels [N] of ``x``; ``previous`` labels seed the centres (warm start)."""
        if len(x) < self.clusters:
            raise ValueError(f"self_condition.clusters={self.clusters} is more than the "
                             f"{len(x)} training samples; use at most {len(x)} clusters")
        f = self.features(D, x)
        init = None
        if previous is not None:
            previous = previous.cpu()
            counts = torch.bincount(previous, minlength=self.clusters).clamp(min=1)
            init = torch.zeros(self.clusters, f.shape[1]).index_add_(0, previous, f)
            init /= counts[:, None].float()
        labels, _ = kmeans(f, self.clusters, init=init, iters=self.iters,
                           seed=epoch_seed(self.seed, step))
        return labels

    def prior(self, labels: torch.Tensor) -> torch.Tensor:
        """Cluster sizes as a float [K]: G's labels are drawn in these proportions."""
        return torch.bincount(labels, minlength=self.clusters).float()


class SelfConditioning:
    """The strategy the loop calls for ``self_condition.clusters`` > 0: clusters the real
    data with the initial D on a fresh run, again every ``interval`` steps, and makes the
    run train on the cluster labels (the real batches' labels, and G's label prior).

    Args:
        config: the run's ``SelfConditionConfig``.
        seed: the run's seed (the projection and k-means draws; never the training RNG).
    """

    def __init__(self, config, seed: int) -> None:
        self.interval = config.interval
        self.clusterer = SelfConditioner(config.clusters, config.dim, config.iters, seed)

    def start(self, trainer) -> None:
        """Cluster with the initial D on a fresh run, then train on the labels."""
        if trainer.state.cluster_labels is None:
            trainer.out.log(self._recluster(trainer, previous=None))
        self.apply(trainer)

    def before_step(self, trainer) -> None:
        """Cluster again with the current D when ``interval`` steps have passed."""
        s = trainer.state
        if self.interval and s.step - s.cluster_step >= self.interval:
            trainer.out.log(self._recluster(trainer, previous=s.cluster_labels))
            self.apply(trainer)

    def apply(self, trainer) -> None:
        """Train on the state's cluster labels, and draw G's labels in their proportions."""
        s = trainer.state
        trainer.batches.y = s.cluster_labels
        prior = self.clusterer.prior(s.cluster_labels).to(s.device)
        for net in (s.G, s.G_ema):
            if net is not None:
                net.cond.label_prior.copy_(prior)

    def _recluster(self, trainer, previous: torch.Tensor | None) -> dict:
        s, t = trainer.state, time.perf_counter()
        labels = self.clusterer.cluster(s.D, trainer.batches.x, s.step, previous).to(s.device)
        # several processes: rank 0's labels for all (D's BatchNorm running statistics, used
        # in eval mode, come from each process's own shards)
        trainer.world.broadcast_(labels)
        sizes = torch.bincount(labels, minlength=self.clusterer.clusters)
        record = {"step": s.step, "self_condition/seconds": time.perf_counter() - t,
                  "self_condition/smallest": int(sizes.min()),
                  "self_condition/largest": int(sizes.max())}
        if previous is not None:
            record["self_condition/relabelled"] = float((labels != previous).float().mean())
        s.cluster_labels, s.cluster_step = labels, s.step
        return record
