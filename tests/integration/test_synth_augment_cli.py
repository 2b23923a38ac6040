"""gankit synth and gankit bench augment on tiny runs: labelled class folders and npz with a
manifest, the CAS/augmentation protocol's plumbing, and the fixed digits split."""

import json

import numpy as np
import pytest
import torch

from gankit.benchmarks.augment import few_per_class
from gankit.cli import main
from gankit.data import load_dataset

TINY = ["--no-progress", "--set", "generator.width=4", "--set", "discriminator.width=4",
        "--set", "train.batch_size=8", "--set", "data.resolution=8"]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("synth") / "cgan"
    assert main(["train", "cgan", "--data", "digits:train", "--steps", "2", "--out", str(run),
                 *TINY]) == 0
    return run


def test_synth_writes_labelled_npz_and_class_folders_with_a_manifest(cgan_run, tmp_path):
    assert main(["synth", str(cgan_run), "--per-class", "3", "--out",
                 str(tmp_path / "s.npz")]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["x"].shape == (30, 1, 8, 8) and data["x"].dtype == np.uint8
    assert data["y"].tolist() == [c for c in range(10) for _ in range(3)]
    manifest = json.loads((tmp_path / "s.manifest.json").read_text())
    assert manifest["step"] == 2 and manifest["per_class"] == 3 and manifest["samples"] == 30
    assert manifest["run"].endswith("cgan") and manifest["seed"] == 0
    assert main(["synth", str(cgan_run), "--per-class", "2", "--out",
                 str(tmp_path / "dir")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir" / "7").iterdir()) == ["00000.png",
                                                                         "00001.png"]
    assert (tmp_path / "dir" / "manifest.json").is_file()
    # the same seed gives the same images
    assert main(["synth", str(cgan_run), "--per-class", "3", "--out",
                 str(tmp_path / "t.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "t.npz")["x"], data["x"])


def test_synth_refuses_an_unconditional_run(tmp_path, capsys):
    run = tmp_path / "dc"
    assert main(["train", "dcgan", "--data", "digits", "--steps", "1", "--out", str(run),
                 *TINY]) == 0
    assert main(["synth", str(run), "--per-class", "2", "--out", str(tmp_path / "x.npz")]) == 2
    assert "needs a class-conditional run" in capsys.readouterr().err


def test_the_digits_split_and_few_per_class():
    train, test = load_dataset("digits:train"), load_dataset("digits:test")
    assert len(train) + len(test) == 1797 and torch.bincount(test.y).tolist() == [36] * 10
    idx = few_per_class(train.y, 5, seed=3)
    assert torch.bincount(train.y[idx]).tolist() == [5] * 10
    assert torch.equal(idx, few_per_class(train.y, 5, seed=3))


def test_bench_augment_runs_its_protocol(tmp_path, capsys):
    torch.set_num_threads(1)
    assert main(["bench", "augment", "--data", "digits", "--seeds", "2", "--steps", "2",
                 "--epochs", "1", "--out", str(tmp_path), "--no-progress",
                 "--set", "generator.width=4", "--set", "discriminator.width=4",
                 "--set", "train.batch_size=8", "--set", "data.resolution=8"]) == 0
    out = capsys.readouterr().out
    assert "| synthetic only (CAS) |" in out and "| 10 real per class + synthetic |" in out
    report = json.loads((tmp_path / "results.json").read_text())
    assert len(report["rows"]) == 2 and 0 <= report["cas"][0] <= 1
    assert report["p_value_k10"] is None or 0 <= report["p_value_k10"] <= 1
