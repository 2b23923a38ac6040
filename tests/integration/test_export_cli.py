"""``gankit export`` end to end on tiny trained runs: the exported file gives what
``gankit sample`` gives for the same z and labels; G_ema or G; errors."""

import json
import sys

import pytest
import torch

import gankit
from gankit import api, export
from gankit.cli import main

TINY = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.sample_interval=0", "train.checkpoint_interval=2", "train.log_interval=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-step runs on digits (8x8): dcgan (EMA with standing BatchNorm statistics), cgan
    (one-hot labels concatenated to z, EMA) and dcgan without EMA."""
    root = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    for name, preset, extra in (("dcgan", "dcgan", []), ("cgan", "cgan", []),
                                ("no_ema", "dcgan", ["hooks.ema=null"])):
        gankit.train(preset, data="digits", steps=2, out=root / name, progress=False,
                     overrides=TINY + extra)
    return root


def _z(n, z_dim, seed):
    """The latents `gankit.api.sample` draws for ``seed`` on the CPU."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def test_onnx_export_of_a_conditional_run_gives_what_sample_gives(runs, capsys):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'gankit[onnx]'")
    pytest.importorskip("onnxscript", reason="pip install 'gankit[onnx]'")
    onnx = pytest.importorskip("onnx", reason="pip install 'gankit[onnx]'")
    run = runs / "cgan"
    assert main(["export", str(run), "--format", "onnx"]) == 0
    path = run / "export" / "generator.onnx"
    line = capsys.readouterr().out
    assert line.startswith(f"exported G_ema (step 2) as ONNX opset 20 to {path}: inputs z "
                           "[N, 100] float32, labels [N] int64 in 0..9; output images "
                           "[N, 1, 8, 8] in [-1, 1]; matches PyTorch to ")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("z", "tensor(float)"), ("labels", "tensor(int64)")]
    labels = torch.tensor([3, 3, 0, 9, 5, 1, 7])
    x = api.sample(run, 7, classes=labels, seed=4)
    (got,) = session.run(None, {"z": _z(7, 100, 4).numpy(), "labels": labels.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), x, rtol=0, atol=1e-4)
    (other,) = session.run(None, {"z": _z(7, 100, 4).numpy(), "labels": (labels + 1).numpy() % 10})
    assert abs(other - got).max() > 1e-3  # the labels reach the images
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["gankit"])
    assert (meta["net"], meta["step"], meta["z_dim"], meta["num_classes"]) == ("G_ema", 2, 100,
                                                                               10)
    assert meta["output"] == {"name": "images", "shape": ["N", 1, 8, 8], "range": [-1, 1]}


def test_torchscript_export_of_g_ema_and_of_g(runs, tmp_path, capsys):
    run = runs / "dcgan"
    out = tmp_path / "deep" / "g.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(
        f"exported G_ema (step 2) as TorchScript to {out}: inputs z [N, 100] float32; output "
        "images [N, 1, 8, 8] in [-1, 1]; matches PyTorch to 0.0e+00")
    z = _z(6, 100, 2)
    x_ema = torch.jit.load(str(out))(z)
    torch.testing.assert_close(x_ema, api.sample(run, 6, seed=2), rtol=0, atol=1e-6)
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out),
                 "--no-ema"]) == 0
    assert capsys.readouterr().out.startswith("exported G (step 2)")
    x_raw = torch.jit.load(str(out))(z)
    torch.testing.assert_close(x_raw, api.sample(run, 6, seed=2, ema=False), rtol=0, atol=1e-6)
    assert (x_raw - x_ema).abs().max() > 1e-3  # G and G_ema differ after two steps
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.pt"]  # no temp file left


def test_a_run_without_ema_exports_g_with_a_note(runs, capsys):
    run = runs / "no_ema"
    assert main(["export", str(run), "--format", "torchscript", "--step", "2"]) == 0
    captured = capsys.readouterr()
    assert "kept no EMA generator; exported the raw G" in captured.err
    assert captured.out.startswith(f"exported G (step 2) as TorchScript to "
                                   f"{run / 'export' / 'generator.pt'}")
    result = gankit.export_generator(run, "torchscript", run / "g2.pt", check=False)
    assert (result.net, result.max_abs_diff, result.num_classes) == ("G", None, 0)
    torch.testing.assert_close(torch.jit.load(str(run / "g2.pt"))(_z(3, 100, 0)),
                               api.sample(run, 3, seed=0), rtol=0, atol=1e-6)


def _error(capsys, *argv):
    assert main(["export", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: ")
    return err


def test_export_errors(runs, tmp_path, capsys, monkeypatch):
    run = runs / "dcgan"
    assert "'tflite' is not supported; choose one of onnx, torchscript" in _error(
        capsys, run, "--format", "tflite")
    (tmp_path / "empty").mkdir()
    assert "no checkpoint found" in _error(capsys, tmp_path / "empty", "--format", "onnx")
    assert "has no checkpoint of step 7; kept steps" in _error(
        capsys, run, "--format", "torchscript", "--step", "7")
    assert "is a directory; give a file name" in _error(
        capsys, run, "--format", "torchscript", "--out", tmp_path)
    assert "the suffix .onnx is not a torchscript file's" in _error(
        capsys, run, "--format", "torchscript", "--out", tmp_path / "g.onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    assert ("--format onnx needs onnxscript (not installed): pip install 'gankit[onnx]'"
            in _error(capsys, run, "--format", "onnx"))
    monkeypatch.setitem(export.TOLERANCE, "torchscript", -1.0)  # every check fails
    assert "nothing was written" in _error(capsys, run, "--format", "torchscript", "--out",
                                           tmp_path / "x" / "g.pt")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
