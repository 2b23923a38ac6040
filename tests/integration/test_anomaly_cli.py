"""Anomaly detection: AUROC by hand, a classical detector in a closed-form setting, and the
ganomaly method through gankit anomaly fit / score / heatmap on a tiny run."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.benchmarks.anomaly import auroc, baseline_scores
from gankit.cli import main


def test_auroc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of the 4 pairs are ordered
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0


@pytest.mark.parametrize("name", ["isolation_forest", "one_class_svm"])
def test_a_detector_fitted_on_one_gaussian_scores_a_shifted_one_higher(name):
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (500, 2))
    test = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    scores = baseline_scores(name, normal, test, seed=0)
    assert auroc(scores, [0] * 200 + [1] * 200) > 0.95


def test_ganomaly_fit_score_and_heatmap(tmp_path, capsys):
    torch.set_num_threads(1)
    run = tmp_path / "gano"
    assert main(["anomaly", "fit", "ganomaly", "--normal", "0,1,2", "--steps", "2", "--out",
                 str(run), "--no-progress", "--set", "generator.width=4",
                 "--set", "discriminator.width=4", "--set", "train.batch_size=8"]) == 0
    assert "(classes [0, 1, 2])" in capsys.readouterr().out
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 80 * i, np.uint8)).save(images / f"{i}.png")
    assert main(["anomaly", "score", str(run), str(images), "--out",
                 str(tmp_path / "s.csv")]) == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "name,score" and [line.split(",")[0] for line in lines[1:]] == \
        ["0.png", "1.png", "2.png"]
    assert all(float(line.split(",")[1]) >= 0 for line in lines[1:])
    assert main(["anomaly", "heatmap", str(run), str(images / "1.png"), "--out",
                 str(tmp_path / "m.png")]) == 0
    with Image.open(tmp_path / "m.png") as img:
        assert img.width > 2 * img.height - 20  # the image beside its residual map
    assert main(["anomaly", "fit", "isolation", "--out", str(tmp_path / "x")]) == 2


@pytest.mark.parametrize("method", ["fanogan", "egbad"])
def test_fanogan_and_egbad_fit_and_score(tmp_path, method):
    torch.set_num_threads(1)
    run = tmp_path / method
    assert main(["anomaly", "fit", method, "--normal", "0,1", "--steps", "2", "--out",
                 str(run), "--no-progress", "--set", "generator.width=4",
                 "--set", "train.batch_size=8"]) == 0
    if method == "fanogan":  # the first stage's WGAN-GP run is kept beside
        assert (run / "gan" / "checkpoints").is_dir()
    x = tmp_path / "x.npz"
    np.savez(x, x=np.random.default_rng(0).integers(0, 255, (3, 28, 28), dtype=np.uint8))
    assert main(["anomaly", "score", str(run), str(x), "--out", str(tmp_path / "s.csv")]) == 0
    scores = [float(line.split(",")[1]) for line in
              (tmp_path / "s.csv").read_text().splitlines()[1:]]
    assert len(scores) == 3 and all(np.isfinite(scores))


def test_ganomaly_on_table_features_and_the_breast_cancer_protocol(tmp_path, capsys):
    torch.set_num_threads(1)
    assert main(["bench", "anomaly", "--data", "breast_cancer", "--seeds", "1", "--steps", "2",
                 "--no-progress", "--set", "generator.width=8",
                 "--set", "train.batch_size=16"]) == 0
    out = capsys.readouterr().out
    assert "| anomaly | ganomaly | isolation_forest | one_class_svm |" in out
