"""The helpers of the bench/ scripts that are not timing code."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_branch_copies_one_checkpoint(tmp_path):
    curve = _script("stacked_mnist_curve")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("train: {}\n")
    for step in (4000, 6000):
        for suffix in (".pt", ".safetensors"):
            (run / "checkpoints" / f"step_{step:08d}{suffix}").write_bytes(bytes([step // 1000]))
    out = tmp_path / "branch"
    assert curve.branch(f"{run}:6000", str(out)) == 6000
    copied = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert copied == ["step_00006000.pt", "step_00006000.safetensors"]
    assert (out / "checkpoints" / "step_00006000.pt").read_bytes() == bytes([6])
    assert (out / "config.yaml").read_text() == "train: {}\n"
    with pytest.raises(SystemExit, match="exists"):
        curve.branch(f"{run}:6000", str(out))
    with pytest.raises(SystemExit, match="no checkpoint .*step_00005000"):
        curve.branch(f"{run}:5000", str(tmp_path / "other"))
    with pytest.raises(SystemExit, match="RUN_DIR:STEP, got"):
        curve.branch(str(run), str(tmp_path / "other"))
