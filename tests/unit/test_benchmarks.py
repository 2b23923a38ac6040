"""Benchmark protocols: mode counting on Stacked MNIST, tables, recipe validation."""

import math

import pytest
import torch

from gankit.benchmarks import _common, mixture, stacked_mnist
from gankit.data import load_dataset


@pytest.fixture(scope="module")
def stacks():
    return load_dataset("stacked_mnist")


def test_stacked_mnist_data(stacks):
    assert stacks.x.shape == (50_000, 3, 28, 28) and stacks.num_classes == 1000
    assert stacks.y.unique().numel() == 1000
    digits = load_dataset("mnist5k")
    # channel 0 of every stack is one of the 5,000 real digits, and y names its class
    first = stacks.x[0, 0]
    matches = (digits.x[:, 0] == first).flatten(1).all(1).nonzero().flatten()
    assert len(matches) >= 1 and int(digits.y[matches[0]]) == int(stacks.y[0]) // 100


@pytest.mark.slow  # a quality check (~10-20 s): run with -m slow
def test_real_stacks_cover_all_modes_at_the_kl_floor(stacks):
    res = stacked_mnist.count_modes(stacks.x[:26_000])
    assert res["modes"] == 1000
    # floor ~ (K - 1) / (2N) = 0.019 for a perfect sampler; classifier errors add a little
    assert 0.010 < res["kl"] < 0.03
    # balanced digits in every channel, and the classifier is sure of nearly all of them
    assert 0 <= res["kl_channels"] < 0.003 and res["uncertain"] < 0.01


def test_a_one_mode_generator_scores_one_mode(stacks):
    x = stacks.x[:1].expand(500, -1, -1, -1)
    res = stacked_mnist.count_modes(x)
    assert res["modes"] == 1
    assert res["kl"] == pytest.approx(math.log(1000))
    assert res["kl_channels"] == pytest.approx(3 * math.log(10))  # all of it is marginal skew


def test_kl_splits_into_channel_skew_and_dependence(stacks):
    """Two digits only, each drawn with probability 1/2 per channel: by hand, each channel's
    KL vs uniform over 10 is ln 10 - ln 2 = ln 5. Independent channels (8 triples, 1/8
    each): kl = ln 1000 - ln 8 = 3 ln 5, all of it channel skew. One digit copied to all
    three channels (full dependence): the same marginals but 2 modes, kl = ln 500, of which
    ln 500 - 3 ln 5 = ln 4 is the dependence."""
    digits = load_dataset("mnist5k")
    ones = digits.x[digits.y == 1][:8, 0]
    sevens = digits.x[digits.y == 7][:8, 0]
    pick = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    src = torch.stack([ones, sevens])  # [2, 8, 28, 28]
    x = torch.stack([torch.stack([src[pick[i % 8, ch], i // 8 % 8] for ch in range(3)])
                     for i in range(64)])  # every triple of {1, 7} equally often
    res = stacked_mnist.count_modes(x)
    assert res["modes"] == 8
    assert res["kl"] == pytest.approx(3 * math.log(5))
    assert res["kl_channels"] == pytest.approx(3 * math.log(5))
    same = x[:, :1].expand(-1, 3, -1, -1)  # one digit copied to all channels
    res = stacked_mnist.count_modes(same)
    assert res["modes"] == 2 and res["kl"] == pytest.approx(math.log(500))
    assert res["kl_channels"] == pytest.approx(3 * math.log(5))  # dependence: ln 500 - 3 ln 5


def test_count_modes_rejects_grey_images():
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        stacked_mnist.count_modes(torch.zeros(4, 1, 28, 28))


def test_mean_and_standard_error():
    mean, se = _common.mean_se([1.0, 2.0, 3.0, 6.0])  # mean 3, sample std sqrt(14/3)
    assert mean == 3.0 and se == pytest.approx(math.sqrt(14 / 3) / 2)
    assert _common.mean_se([5.0]) == (5.0, None)  # one run has no standard error
    assert _common.fmt(5.0, None, 2) == "5.00" and _common.fmt(3.0, 0.5, 1) == "3.0 ± 0.5"


def test_unknown_recipe_and_dataset():
    with pytest.raises(ValueError, match="Did you mean 'pacgan2'"):
        mixture.run("ring", ["pacgan22"], seeds=1, steps=1)
    with pytest.raises(ValueError, match="ring or grid"):
        mixture.run("moons", ["gan"], seeds=1, steps=1)


def test_mixture_bench_runs_and_prints_paper_rows(tmp_path):
    report = mixture.run("ring", ["recommended"], seeds=2, steps=20, out=tmp_path,
                         log=lambda s: None)
    rows = report["runs"]["recommended"]
    assert len(rows) == 2 and all(0 <= r["modes"] <= 8 for r in rows)
    text = mixture.table(report)
    assert "gankit recommended" in text and "paper PacGAN4" in text and "7.8 ± 0.1" in text
    assert (tmp_path / "results.json").exists()


def test_first_seed_adds_seeds_that_match_a_longer_report(tmp_path):
    both = mixture.run("ring", ["recommended"], seeds=2, steps=15, log=lambda s: None)
    later = mixture.run("ring", ["recommended"], seeds=1, steps=15, out=tmp_path, first_seed=1,
                        log=lambda s: None)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in
             (both["runs"]["recommended"][1], later["runs"]["recommended"][0])]
    assert strip[0] == strip[1]  # seed 1 run alone == seed 1 of seeds 0..1
    assert (tmp_path / "recommended" / "seed1").is_dir()
    assert not (tmp_path / "recommended" / "seed0").exists()
    assert later["first_seed"] == 1 and "1 seed (1..1)" in mixture.table(later)
    assert "2 seeds (0..1)" in mixture.table(both)
    with pytest.raises(ValueError, match="--first-seed must be 0 or more, got -1"):
        stacked_mnist.run(["dcgan"], seeds=1, steps=1, first_seed=-1)


def test_bench_cli_prints_table_and_rejects_unknown_recipe(tmp_path, capsys):
    from gankit.cli import main

    assert main(["bench", "mixture", "--recipes", "recommended", "--seeds", "1", "--steps", "10",
                 "--first-seed", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "gankit recommended" in out and "paper GAN" in out and "1 seed (4..4)" in out
    assert (tmp_path / "recommended" / "seed4").is_dir()
    assert main(["bench", "stacked-mnist", "--recipes", "dcgn"]) == 2
    assert "Did you mean 'dcgan'?" in capsys.readouterr().err


@pytest.mark.parametrize("bench", ["mixture", "stacked_mnist"])
def test_every_recipe_resolves_to_a_valid_config(bench):
    from gankit import config as C

    for name, recipe in _common.load_recipes(bench)["recipes"].items():
        cfg = C.resolve(recipe["preset"], list(recipe["set"]))
        assert cfg.data.name in ("ring", "grid", "stacked_mnist"), name
        if bench == "stacked_mnist":
            stacked_mnist.recipe_refine_options(name, recipe)  # valid refine options
    assert set(_common.load_recipes(bench)["recipes"]) == (
        {"gan", "pacgan2", "pacgan3", "pacgan4", "recommended"} if bench == "mixture" else
        {"dcgan", "pacdcgan2", "recommended"})


def test_the_recommended_stacked_mnist_recipe():
    from gankit import config as C

    recipe = _common.load_recipes("stacked_mnist")["recipes"]["recommended"]
    cfg = C.resolve(recipe["preset"], list(recipe["set"]))
    assert cfg.generator.options["width"] == cfg.discriminator.options["width"] == 128
    assert cfg.generator.options["output_scale"] == 1.5
    assert cfg.regularizers == {"feature_matching": {"weight": 0.3, "interval": 1,
                                                     "unbiased": False}}
    assert (cfg.train.batch_size, cfg.train.steps, cfg.train.precision) == (32, 12000, "bf16")
    assert (cfg.train.d_joint_batch, cfg.train.d_joint_batch_from) == (True, 10000)
    assert cfg.train.batch_schedule == ((10000, 64),) and cfg.hooks == {}
    assert recipe["refine"] == {"quantile": 0.95, "precision": "bf16"}
    assert set(recipe) == {"preset", "set", "refine"}


def test_stacked_mnist_table_by_hand():
    rows = [{"modes": 1000, "kl": 0.1, "kl_channels": 0.08, "uncertain": 0.25, "seconds": 60},
            {"modes": 998, "kl": 0.2, "kl_channels": 0.12, "uncertain": 0.35, "seconds": 80}]
    report = {"runs": {"mine": rows}, "paper": {"PacDCGAN2": [1000.0, 0.0, 0.06, 0.003]},
              "samples": 26000, "seeds": 2, "steps": 5}
    mine, paper = stacked_mnist.table(report).splitlines()[1:3]
    # means ± standard errors: modes 999 ± 1, KL 0.15 ± 0.05; the worst KL 0.2; then s/run
    # 70, KL channels 0.100, uncertain 30.0 %
    assert mine.split() == ["gankit", "mine", "(mnist5k)", "999.0", "±", "1.0", "0.1500", "±",
                            "0.0500", "0.2000", "70", "0.100", "30.0%"]
    assert paper.split() == ["paper", "PacDCGAN2", "1000.0", "±", "0.0", "0.06", "±", "0.00"]


def test_stacked_mnist_table_labels_refined_rows_apart_from_plain_sampling():
    row = {"modes": 1000, "kl": 0.05, "kl_channels": 0.03, "uncertain": 0.01, "seconds": 9}
    report = {"runs": {"plain": [dict(row)], "sharp": [dict(row, acceptance=0.3)],
                       "old_sharp": [dict(row, acceptance=0.4)]},
              "recipes": {"plain": {"preset": "dcgan", "set": []},
                          "sharp": {"preset": "dcgan", "set": [], "refine": {}}},
              "paper": {"PacDCGAN2": [1000.0, 0.0, 0.06, 0.003]},
              "samples": 26000, "seeds": 1, "steps": 5}
    lines = stacked_mnist.table(report).splitlines()
    # a recipe with refine: (or, in a report without recipes, rows with an acceptance) is
    # marked refined; plain sampling, which the paper rows use, is not
    assert lines[1].split()[:3] == ["gankit", "plain", "(mnist5k)"]
    assert lines[2].split()[:4] == ["gankit", "sharp", "(mnist5k,", "refined)"]
    assert lines[3].split()[:4] == ["gankit", "old_sharp", "(mnist5k,", "refined)"]
    assert "refined: critic-guided rejection sampling" in lines[-1]
    del report["runs"]["sharp"], report["runs"]["old_sharp"]
    assert "refined" not in stacked_mnist.table(report)


def test_a_refine_recipe_scores_refined_samples(monkeypatch):
    """A recipe's ``refine:`` options make the bench count critic-refined samples; bad
    options are refused before any training, with the recipe named."""
    spec = _common.load_recipes("stacked_mnist")
    spec["recipes"] = {
        "tiny": {"preset": "dcgan", "set": ["data.name=stacked_mnist", "train.batch_size=8"]},
        "tiny_refined": {"preset": "dcgan",
                         "set": ["data.name=stacked_mnist", "train.batch_size=8"],
                         "refine": {"fit_samples": 1000, "quantile": 0.5}}}
    monkeypatch.setattr(_common, "load_recipes", lambda name: spec)
    report = stacked_mnist.run(["tiny", "tiny_refined"], seeds=1, steps=2, samples=300,
                               log=lambda s: None)
    plain, refined = report["runs"]["tiny"][0], report["runs"]["tiny_refined"][0]
    assert "acceptance" not in plain
    # quantile 0.5: about half of G's held-out samples reach the cap, so at least that share
    # of candidates is kept, and some of the rest are not
    assert 0.4 < refined["acceptance"] < 1.0
    assert 1 <= refined["modes"] <= 300 and 0 <= refined["kl"] <= math.log(1000) + 1e-9
    spec["recipes"]["tiny_refined"]["refine"] = {"alpah": 0.5}
    with pytest.raises(ValueError, match="recipe tiny_refined: bad refine options"):
        stacked_mnist.run(["tiny_refined"], seeds=1, steps=2, samples=300, log=lambda s: None)


def _stacked_report(rows, **extra):
    report = {"seeds": len(rows), "first_seed": 0, "steps": None, "samples": 26000,
              "runs": {"mine": rows}, "paper": {"PacDCGAN2": [1000.0, 0.0, 0.06, 0.003]}}
    report.update(extra)
    return report


def _row(kl, modes=1000, **extra):
    return {"modes": modes, "kl": kl, "kl_channels": kl / 2, "uncertain": 0.25,
            "seconds": 100.0, **extra}


def _write(path, report):
    import json

    path.write_text(json.dumps(report))
    return path


def test_combine_merges_seeds_run_apart(tmp_path):
    # seeds 3..4 from a report written before rows named their seed, seed 7 from a new one
    old = _write(tmp_path / "a.json", _stacked_report([_row(0.04), _row(0.06)], first_seed=3))
    new = _write(tmp_path / "b.json", _stacked_report(
        [_row(0.05, modes=998, seed=7)], first_seed=7, benchmark="stacked_mnist"))
    merged = _common.combine([new, old])
    assert [r["seed"] for r in merged["runs"]["mine"]] == [3, 4, 7]
    assert merged["seeds"] == 3 and merged["first_seed"] == 3
    assert merged["combined_from"] == [str(new), str(old)]
    line = stacked_mnist.table(merged).splitlines()[1].split()
    # KL 0.04, 0.06, 0.05: mean 0.05, sample std 0.01, s.e. 0.01 / sqrt(3) = 0.0058;
    # modes 1000, 1000, 998: mean 999.3, s.e. sqrt(4/3) / sqrt(3) = 0.67; worst KL 0.06
    assert line[3:10] == ["999.3", "±", "0.7", "0.0500", "±", "0.0058", "0.0600"]
    assert "3 seeds (3, 4, 7)" in stacked_mnist.table(merged)


def test_combine_refuses_what_cannot_share_a_table(tmp_path):
    a = _write(tmp_path / "a.json", _stacked_report([_row(0.04)], first_seed=1,
                                                    recipes={"mine": {"preset": "dcgan"}}))
    with pytest.raises(ValueError, match=r"mine seed 1 is in both .*a\.json and .*a2\.json"):
        _common.combine([a, _write(tmp_path / "a2.json",
                                   _stacked_report([_row(0.05)], first_seed=1))])
    fewer = _write(tmp_path / "n.json", _stacked_report([_row(0.04)], first_seed=2,
                                                        samples=10000))
    with pytest.raises(ValueError, match=r"samples 10000 differs from .*a\.json's 26000"):
        _common.combine([a, fewer])
    other = _write(tmp_path / "m.json", {"dataset": "ring", "steps": None, "seeds": 1,
                                         "runs": {"gan": [{"modes": 8}]}, "paper": {}})
    with pytest.raises(ValueError, match="is a mixture report but .* is a stacked_mnist one"):
        _common.combine([a, other])
    edited = _write(tmp_path / "e.json", _stacked_report(
        [_row(0.04)], first_seed=5, recipes={"mine": {"preset": "gan"}}))
    with pytest.raises(ValueError, match="recipe mine is not the recipe of the same name"):
        _common.combine([a, edited])
    with pytest.raises(ValueError, match=r"nope\.json: no such file"):
        _common.combine([a, tmp_path / "nope.json"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        _common.combine([tmp_path / "bad.json"])
    with pytest.raises(ValueError, match="not a gankit bench results.json"):
        _common.combine([_write(tmp_path / "x.json", {"benchmark": "cifar", "runs": {}})])


def test_combined_seeds_equal_one_report_of_them_all(tmp_path):
    """Seeds 0 and 1 run apart and combined give the rows of one two-seed report."""
    quiet = {"steps": 15, "log": lambda s: None}
    both = mixture.run("ring", ["recommended"], seeds=2, **quiet)
    mixture.run("ring", ["recommended"], seeds=1, out=tmp_path / "s1", first_seed=1, **quiet)
    mixture.run("ring", ["recommended"], seeds=1, out=tmp_path / "s0", **quiet)
    merged = _common.combine([tmp_path / "s1" / "results.json", tmp_path / "s0" / "results.json"])
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in rep["runs"]["recommended"]]
             for rep in (both, merged)]
    assert strip[0] == strip[1] and [r["seed"] for r in strip[1]] == [0, 1]
    assert merged["recipes"] == both["recipes"] and merged["benchmark"] == "mixture"
    mine, whole = (mixture.table(r).splitlines()[1] for r in (merged, both))
    assert mine[:-8] == whole[:-8]  # the same row but for the seconds per run


def test_bench_combine_cli(tmp_path, capsys):
    from gankit.cli import main

    a = _write(tmp_path / "a.json", _stacked_report([_row(0.04), _row(0.06)]))
    b = _write(tmp_path / "b.json", _stacked_report([_row(0.05)], first_seed=2))
    out = tmp_path / "merged"
    out.mkdir()
    assert main(["bench", "combine", str(a), str(b), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0.0500 ± 0.0058" in text and "3 seeds (0..2)" in text
    assert _common.combine([out / "results.json"])["seeds"] == 3
    assert main(["bench", "combine", str(a), str(a)]) == 2
    assert "mine seed 0 is in both" in capsys.readouterr().err
