"""Anomaly detection: AUROC by hand, a classical detector in a closed-form setting, and the
ganomaly method through gankit anomaly fit / score / heatmap on a tiny run."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.benchmarks.anomaly import _finished, auroc, baseline_scores
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
    # gankit bench anomaly scores a finished run again instead of training it twice
    said = []
    assert _finished(run, 2, said.append).step == 2 and "no training" in said[0]
    assert _finished(tmp_path / "imgs", None, None) is None
    with pytest.raises(ValueError, match="not --steps 5"):
        _finished(run, 5, None)


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


def test_ganomaly_on_a_csv_scores_rows_by_column_name(tmp_path, capsys):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = ["size,kind,weight"] + [
        f"{rng.normal(10, 2):.3f},{'ab'[i % 2]},{'' if i == 3 else f'{rng.normal(1, 0.1):.3f}'}"
        for i in range(40)]
    (tmp_path / "normal.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "gano"
    assert main(["anomaly", "fit", "ganomaly", "--data", f"csv:{tmp_path / 'normal.csv'}",
                 "--steps", "2", "--out", str(run), "--no-progress",
                 "--set", "train.batch_size=8"]) == 0
    # 3 columns: size, weight and its missing indicator, kind one-hot a/b = 5 features
    assert np.load(run / "anomaly_features.npz")["x"].shape == (40, 5)
    new = ["size,kind,weight", "10.5,a,1.0", "30.0,b,", "9.0,c,0.2"]
    swapped = ["weight,size,kind", "1.0,10.5,a", ",30.0,b", "0.2,9.0,c"]
    for name, lines in (("new.csv", new), ("swapped.csv", swapped)):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        assert main(["anomaly", "score", str(run), str(tmp_path / name), "--out",
                     str(tmp_path / f"{name}.scores")]) == 0
    a, b = ((tmp_path / f"{n}.scores").read_text().splitlines() for n in ("new.csv",
                                                                           "swapped.csv"))
    assert a == b and [line.split(",")[0] for line in a] == ["name", "row1", "row2", "row3"]
    (tmp_path / "short.csv").write_text("size,kind\n1,a\n")
    capsys.readouterr()
    assert main(["anomaly", "score", str(run), str(tmp_path / "short.csv"), "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "no column 'weight'" in capsys.readouterr().err
    assert main(["anomaly", "fit", "ganomaly", "--data", f"csv:{tmp_path / 'normal.csv'}",
                 "--normal", "1", "--out", str(tmp_path / "y")]) == 2
    # fitting over the run is refused before its kept encoding is touched
    kept = (run / "anomaly_reference.csv").read_text()
    (tmp_path / "other.csv").write_text("size,kind,weight\n1,a,2\n3,b,4\n")
    assert main(["anomaly", "fit", "ganomaly", "--data", f"csv:{tmp_path / 'other.csv'}",
                 "--out", str(run)]) == 2
    assert (run / "anomaly_reference.csv").read_text() == kept
