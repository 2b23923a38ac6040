"""gankit eval / show / extractor through the CLI, and metrics during training."""

import json

import numpy as np
import pytest
import torch

from gankit import evaluation
from gankit.cli import main
from gankit.data import load_dataset
from gankit.training.checkpoint import load_checkpoint

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=2", "--data", "digits",
        "--no-progress"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))


def test_eval_real_data_against_itself_is_near_zero(tmp_path, capsys):
    real = load_dataset("digits").x
    np.savez(tmp_path / "real.npz", x=real.numpy())
    out = tmp_path / "m.json"
    assert main(["eval", str(tmp_path / "real.npz"), "--metrics", "fid,kid,is,modes",
                 "--against", "digits", "-n", str(len(real)), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert abs(res["fid_1.797k_digits_lenet"]) < 1e-6
    # unbiased KID of identical sets is zero up to subset-sampling noise
    assert abs(res["kid_mean_1.797k_digits_lenet"]) < 5 * res["kid_std_1.797k_digits_lenet"]
    assert res["modes_hit_1.797k_digits_lenet"] == 10
    assert res["modes_kl_1.797k_digits_lenet"] < 1e-3
    assert res["is_mean_1.797k_digits_lenet"] > 9
    printed = capsys.readouterr().out
    assert "fid_" in printed and str(out) in printed
    # the real statistics were cached on disk, atomically, and are reused
    cached = list((tmp_path / "cache" / "stats").glob("*.npz"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert main(["eval", str(tmp_path / "real.npz"), "--metrics", "fid", "--against",
                 "digits", "-n", "500", "--out", str(out)]) == 0
    assert cached[0].stat().st_mtime_ns == mtime


def test_eval_of_a_run_and_training_time_metrics_with_best_checkpoint(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *TINY,
                 "--set", "eval.interval=2", "--set", "eval.n=200",
                 "--set", "eval.metrics=[fid,is]"]) == 0
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    metric_records = [r for r in records if any(k.startswith("fid_") for k in r)]
    assert [r["step"] for r in metric_records] == [2, 4]
    fids = [r["fid_200_digits_lenet"] for r in metric_records]
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["extra"]["best_value"] == min(fids)
    assert best["step"] == metric_records[int(np.argmin(fids))]["step"]
    assert main(["eval", str(run), "-n", "300"]) == 0
    res = json.loads((run / "metrics" / "eval_n300.json").read_text())
    assert sorted(res) == ["fid_300_digits_lenet", "kid_sub300_mean_300_digits_lenet",
                           "kid_sub300_std_300_digits_lenet"]


def test_eval_mixture_run_uses_raw_points(tmp_path):
    run = tmp_path / "ring"
    assert main(["train", "mixture_gan", "--steps", "2", "--out", str(run), "--no-progress",
                 "--set", "generator.widths=[8]", "--set", "discriminator.widths=[8]"]) == 0
    assert json.loads((run / "metrics.json").read_text()).keys() >= {"modes", "hq",
                                                                     "reverse_kl"}
    assert main(["eval", str(run), "-n", "2500"]) == 0
    res = json.loads((run / "metrics" / "eval_n2500.json").read_text())
    assert any(k.startswith("mixture") or "modes" in k for k in res)


@pytest.mark.parametrize("argv,message", [
    (["eval", "nope.npz", "--against", "digits"], "nope.npz: no such samples file"),
    (["eval", "SAMPLES", "--metrics", "fdi"], "Did you mean 'fid'?"),
    (["eval", "SAMPLES"], "--against DATA is required"),
    (["eval", "SAMPLES", "--against", "ring"], "holds 2-D points"),
    (["eval", "SAMPLES", "--against", "digits", "--extractor", "lenet_mnist"],
     "Did you mean 'lenet_mnist5k'?"),
    (["show", "RUN"], "show needs at least one of"),
    (["eval", "SAMPLES", "--against", "digits", "--refine"], "refine needs a run directory"),
    (["eval", "SAMPLES", "--against", "digits", "--refine-set", "alpha=-1"], "alpha=-1.0"),
    (["eval", "BAD_SAMPLES", "--against", "digits"], "s_bad.npz: x[3, 0, 2, 1] (sample 3) "
     "= 1e+300 overflows float32"),
])
def test_eval_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 1, 8, 8), np.float32))
    bad = np.zeros((4, 1, 8, 8))
    bad[3, 0, 2, 1] = 1e300
    np.savez(tmp_path / "s_bad.npz", x=bad)
    argv = [str(tmp_path / "s.npz") if a == "SAMPLES" else a for a in argv]
    argv = [str(tmp_path / "s_bad.npz") if a == "BAD_SAMPLES" else a for a in argv]
    argv = [str(tmp_path) if a == "RUN" else a for a in argv]
    if "--against" not in argv and argv[0] == "eval" and "fdi" in argv:
        argv += ["--against", "digits"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error:") and message in err


def test_default_extractor_choice():
    assert evaluation.default_extractor("mnist5k", "image") == "lenet_mnist5k"
    assert evaluation.default_extractor("ring", "points") == "raw"
    assert evaluation.default_extractor("folder:/x", "image") == "inception_v3_fid"
    assert evaluation.short_name("folder:/data/faces/") == "folder_faces"


def test_extractor_train_cli(tmp_path, capsys):
    out = tmp_path / "lenet.safetensors"
    assert main(["extractor", "train", "--data", "digits", "--out", str(out),
                 "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and out.exists()
    acc = float(printed.split("held-out accuracy ")[1].split(",")[0])
    assert acc > 0.8
    x = load_dataset("digits").x[:50]
    np.savez(tmp_path / "d.npz", x=x.numpy())
    assert main(["eval", str(tmp_path / "d.npz"), "--against", "digits", "--metrics", "is",
                 "--extractor", f"lenet:{out}", "-n", "50"]) == 0


def test_eval_refine_scores_the_samples_gankit_sample_refine_draws(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *TINY,
                 "--set", "hooks.ema=null"]) == 0
    refine = ["--refine-set", "epochs=1", "--refine-set", "pool=1",
              "--refine-set", "fit_samples=2000"]
    drawn = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "300", "--seed", "3", "--out", str(drawn),
                 *refine]) == 0
    printed = capsys.readouterr().err
    acceptance = float(printed.split("acceptance ")[-1].split()[0])
    assert main(["eval", str(drawn), "--against", "digits", "--metrics", "modes,fid",
                 "--seed", "3", "--out", str(tmp_path / "file.json")]) == 0
    assert main(["eval", str(run), "-n", "300", "--seed", "3", "--metrics", "modes,fid",
                 *refine]) == 0
    assert main(["eval", str(run), "-n", "300", "--seed", "3", "--metrics", "modes,fid"]) == 0
    from_file = json.loads((tmp_path / "file.json").read_text())
    refined = json.loads((run / "metrics" / "eval_n300_refined.json").read_text())
    plain = json.loads((run / "metrics" / "eval_n300.json").read_text())
    # eval --refine scores exactly the samples gankit sample --refine drew with that seed:
    # the same mode counts, and FID against the rows the critic never saw
    modes = [k for k in from_file if k.startswith("modes_")]
    assert modes and all(refined[k] == from_file[k] for k in modes)
    assert sorted(refined) == sorted([*modes, "fid_300_digits_heldout_lenet",
                                      "refine_acceptance", "refine_heldout_accuracy"])
    from gankit.evaluation import compute_metrics
    from gankit.refine import reference_split

    digits = load_dataset("digits").x
    heldout = compute_metrics(torch.from_numpy(np.load(drawn)["x"]),
                              digits[reference_split(len(digits))[1]], ["fid"],
                              "lenet_digits", "digits", seed=3, real_tag="_heldout")
    assert heldout == {"fid_300_digits_heldout_lenet": refined["fid_300_digits_heldout_lenet"]}
    assert round(refined["refine_acceptance"], 3) == acceptance
    assert 0 < refined["refine_acceptance"] <= 1
    assert 0.5 <= refined["refine_heldout_accuracy"] <= 1
    assert "fid_300_digits_heldout_lenet" not in plain and "refine_acceptance" not in plain


def test_eval_refine_of_a_tensor_names_it_without_printing_it():
    from gankit.refine import RefineOptions

    with pytest.raises(ValueError, match=r"got a tensor of samples; refine while sampling"):
        evaluation.evaluate(torch.zeros(4, 1, 8, 8), against="digits", refine=RefineOptions())


def test_eval_no_quantize_names_float_results_apart(tmp_path):
    x = load_dataset("digits").x[:400]
    g = torch.Generator().manual_seed(0)
    fake = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    samples = tmp_path / "s.npz"
    np.savez(samples, x=fake.numpy())
    argv = ["eval", str(samples), "--against", "digits", "--metrics", "fid,is"]
    assert main(argv) == 0
    assert main([*argv, "--no-quantize"]) == 0
    quantized = json.loads((tmp_path / "s.metrics.json").read_text())
    floats = json.loads((tmp_path / "s_float.metrics.json").read_text())
    assert sorted(quantized) == ["fid_400_digits_lenet", "is_mean_400_digits_lenet",
                                 "is_std_400_digits_lenet"]
    assert sorted(floats) == [k + "_float" for k in sorted(quantized)]
    assert floats["fid_400_digits_lenet_float"] != quantized["fid_400_digits_lenet"]
    # the API: quantize=False on the floats, and quantisation by default on 8-bit copies
    from gankit.utils.images import quantize_8bit

    assert evaluation.evaluate(fake, against="digits", metrics=["fid"], cache=None,
                               quantize=False) == {"fid_400_digits_lenet_float":
                                                   floats["fid_400_digits_lenet_float"]}
    assert evaluation.evaluate(quantize_8bit(fake), against="digits", metrics=["fid"],
                               cache=None) == {"fid_400_digits_lenet":
                                               quantized["fid_400_digits_lenet"]}


def test_eval_refuses_samples_of_another_shape_unless_resize_is_asked(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    fake = torch.rand(300, 3, 32, 32, generator=g) * 2 - 1
    samples = tmp_path / "s.npz"
    np.savez(samples, x=fake.numpy())
    argv = ["eval", str(samples), "--against", "digits", "--metrics", "fid",
            "--out", str(tmp_path / "m.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error:")
    assert "(3, 32, 32)" in err and "(1, 8, 8)" in err and "--resize" in err
    assert main([*argv, "--resize"]) == 0
    res = json.loads((tmp_path / "m.json").read_text())
    # the key names the resized reference; the value is FID against digits at 32 x 32 RGB
    reference = load_dataset("digits", resolution=32, channels=3).x
    from gankit.evaluation import compute_metrics

    assert res == compute_metrics(fake, reference, ["fid"], "lenet_digits", "digits",
                                  real_tag="_at32x3")
    assert list(res) == ["fid_300_digits_at32x3_lenet"]


def test_a_run_is_evaluated_against_its_data_as_it_was_trained_on(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "2", "--out", str(run), *TINY,
                 "--set", "data.resolution=16", "--set", "eval.interval=2",
                 "--set", "eval.n=200", "--set", "eval.metrics=[fid]"]) == 0
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    logged = [r["fid_200_digits_at16x1_lenet"] for r in records
              if "fid_200_digits_at16x1_lenet" in r]
    assert len(logged) == 1
    # no option needed: the run's data.resolution gives the reference, and the key says so
    assert main(["eval", str(run), "-n", "200", "--metrics", "fid"]) == 0
    res = json.loads((run / "metrics" / "eval_n200.json").read_text())
    assert list(res) == ["fid_200_digits_at16x1_lenet"]


def test_training_time_reference_of_another_shape_is_refused_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *TINY,
                 "--set", "eval.interval=2", "--set", "eval.against=mnist5k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gankit: error: eval.against=mnist5k holds images of shape (1, 28, 28), but "
                   "the run's samples are images of shape (1, 8, 8); set eval.against to data "
                   "of that shape, or leave it unset to compare with the training data"]
    assert not (run / "log.jsonl").exists() or not (run / "log.jsonl").read_text()


def test_eval_best_finds_kid_by_its_protocol_name_when_the_subset_shrinks(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *TINY,
                 "--set", "eval.interval=2", "--set", "eval.n=200",
                 "--set", "eval.metrics=[kid]", "--set", "eval.best=kid_mean"]) == 0
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    kids = [r["kid_sub200_mean_200_digits_lenet"] for r in records
            if "kid_sub200_mean_200_digits_lenet" in r]
    assert len(kids) == 2
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["extra"]["best_value"] == min(kids)
