"""Exporting generators (gankit.export): every registered generator, unconditional and under
each conditioning mode its Options accept, run in onnxruntime and TorchScript against the
same G in eval mode; dynamic batch; labels; loading without gankit; errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gankit import export
from gankit.registry import GENERATORS
from gankit.utils.extras import MissingExtraError

Z_DIM, K = 6, 3
# the first of these shapes each generator family supports
SHAPES = [(1, 8, 8), (1, 32, 32), (2,)]


def _modes(name):
    """The conditioning modes generator ``name`` accepts (its Options refuse the others)."""
    return GENERATORS.get(name).conditioning_modes()


def _shape(name):
    return next(s for s in SHAPES if GENERATORS.get(name).supports(s))


LATENT = [n for n in GENERATORS.names()  # export takes z (and labels): latent generators
          if getattr(GENERATORS.get(n), "takes", "latent") == "latent"]
CASES = [(n, m) for n in LATENT for m in _modes(n)]


def _onnx_cases():
    """CASES, each generator's last mode (cbn: labels and BatchNorm) in the default suite and
    the others marked slow: an ONNX export takes about a second."""
    for name in LATENT:
        modes = _modes(name)
        for mode in modes:
            marks = () if mode == modes[-1] else (pytest.mark.slow,)
            yield pytest.param(name, mode, marks=marks, id=f"{name}-{mode}")


def _generator(name, mode, shape=None, seed=0, **kw):
    """A small G with non-trivial weights and BatchNorm running statistics (a few train-mode
    passes), so that eval-mode BatchNorm, labels and every layer change the output."""
    torch.manual_seed(seed)
    shape = shape or _shape(name)
    G = GENERATORS.get(name)(z_dim=Z_DIM, out_shape=shape, bounded=len(shape) == 3,
                             num_classes=K if mode != "none" else 0, conditioning=mode,
                             **{**GENERATORS.get(name).test_options, **kw})
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.3 * torch.randn_like(p))  # label embeddings and CBN gains away from init
        for _ in range(3):
            z = torch.randn(16, Z_DIM) * 2 + 0.5
            G(z, torch.randint(K, (16,)) if G.conditional else None)
    return G.eval()


def _inputs(n, conditional, seed=5):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, Z_DIM, generator=g)
    return (z, torch.randint(K, (n,), generator=g)) if conditional else (z,)


def _ort(path, inputs):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'gankit[onnx]'")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["z", "labels"][:len(inputs)]
    return torch.from_numpy(session.run(None, dict(zip(names, (x.numpy() for x in inputs))))[0])


def _write(tmp_path, G, fmt, mode, **kw):
    data, diff = export.export_network(G, fmt, z_dim=Z_DIM, num_classes=K * (mode != "none"),
                                       **kw)
    path = tmp_path / f"g{export.FORMATS[fmt]}"
    path.write_bytes(data)
    return path, diff


def test_cases_cover_every_generator_and_conditioning():
    assert {n for n, _ in CASES} == set(LATENT)
    assert ("dcgan", "cbn") in CASES and ("mlp", "concat") in CASES


@pytest.mark.parametrize("name,mode", list(_onnx_cases()))
def test_onnx_matches_pytorch_with_a_dynamic_batch(tmp_path, name, mode):
    pytest.importorskip("onnxscript", reason="pip install 'gankit[onnx]'")
    G = _generator(name, mode)
    path, diff = _write(tmp_path, G, "onnx", mode)
    assert diff is not None and diff <= 1e-4
    cond = mode != "none"
    for n in (5, 1):  # traced with 2
        inputs = _inputs(n, cond)
        got = _ort(path, inputs)
        with torch.no_grad():
            expected = G(*inputs)
        assert got.shape == (n, *_shape(name))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    if cond:  # the labels reach the output
        z, c = _inputs(4, True)
        assert (_ort(path, (z, c)) - _ort(path, (z, (c + 1) % K))).abs().max() > 1e-3


@pytest.mark.parametrize("name,mode", CASES)
def test_torchscript_matches_pytorch_with_a_dynamic_batch(tmp_path, name, mode):
    G = _generator(name, mode)
    path, diff = _write(tmp_path, G, "torchscript", mode)
    assert diff is not None and diff <= 1e-6
    module = torch.jit.load(str(path))
    for n in (5, 1):
        inputs = _inputs(n, mode != "none")
        with torch.no_grad():
            torch.testing.assert_close(module(*inputs), G(*inputs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=pytest.mark.slow)])
def test_a_learned_label_embedding_and_points_export(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxscript", reason="pip install 'gankit[onnx]'")
    G = _generator("mlp", "concat", shape=(2,), embed_dim=4)
    path, _ = _write(tmp_path, G, fmt, "concat", kind="points")
    inputs = _inputs(7, True)
    with torch.no_grad():
        expected = G(*inputs)
    assert expected.abs().max() > 1  # unbounded points, not squashed by a tanh
    got = _ort(path, inputs) if fmt == "onnx" else torch.jit.load(str(path))(*inputs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 if fmt == "onnx" else 1e-6)


def test_export_uses_eval_mode_and_gives_the_mode_back(tmp_path):
    G = _generator("dcgan", "none").train()
    data, _ = export.export_network(G, "torchscript", z_dim=Z_DIM)
    assert G.training  # its own mode back
    # in train mode BatchNorm would use the batch's statistics: batch 5 and 1 would differ
    path = tmp_path / "g.pt"
    path.write_bytes(data)
    z = _inputs(5, False)[0]
    module = torch.jit.load(str(path))
    torch.testing.assert_close(module(z)[:1], module(z[:1]), rtol=0, atol=1e-6)


def test_torchscript_loads_without_gankit(tmp_path):
    G = _generator("dcgan", "cbn")
    path, _ = _write(tmp_path, G, "torchscript", "cbn")
    z, c = _inputs(4, True)
    with torch.no_grad():
        expected = G(z, c)
    np.savez(tmp_path / "io.npz", z=z.numpy(), c=c.numpy(), x=expected.numpy())
    script = (
        "import sys; sys.modules['gankit'] = None  # any import of gankit fails\n"
        "import numpy as np, torch\n"
        f"d = np.load({str(tmp_path / 'io.npz')!r})\n"
        f"m = torch.jit.load({str(path)!r})\n"
        "x = m(torch.from_numpy(d['z']), torch.from_numpy(d['c']))\n"
        "assert not [k for k in sys.modules if k.startswith('gankit.')]\n"
        "print(float((x - torch.from_numpy(d['x'])).abs().max()))\n"
        "print(m.G.__class__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[0]) <= 1e-6


def test_the_torchscript_file_carries_gankit_metadata(tmp_path):
    G = _generator("mlp", "none")
    data, _ = export.export_network(G, "torchscript", z_dim=Z_DIM, metadata={"z_dim": Z_DIM})
    extra = {"gankit.json": ""}
    path = tmp_path / "g.pt"
    path.write_bytes(data)
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["gankit.json"]) == {"z_dim": Z_DIM}


def test_a_failed_check_is_refused(monkeypatch):
    G = _generator("mlp", "none")
    monkeypatch.setitem(export.TOLERANCE, "torchscript", -1.0)
    with pytest.raises(ValueError, match="differs from PyTorch by 0 .*nothing was written"):
        export.export_network(G, "torchscript", z_dim=Z_DIM)


def test_unknown_format_and_missing_extra(monkeypatch):
    G = _generator("mlp", "none")
    with pytest.raises(ValueError, match="'onxx' is not supported; choose one of onnx, "
                       "torchscript. Did you mean 'onnx'"):
        export.export_network(G, "onxx", z_dim=Z_DIM)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"--format onnx needs onnxscript, onnxruntime "
                       r"\(not installed\): pip install 'gankit\[onnx\]'"):
        export.export_network(G, "onnx", z_dim=Z_DIM)
    assert issubclass(MissingExtraError, ImportError)
