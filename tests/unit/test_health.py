"""The health warning rules on synthetic log records, the diversity statistic, the doctor's
remedies and report (no training: fast)."""

import json
import math

import pytest
import torch

from gankit import config as C
from gankit.config import HealthConfig
from gankit.doctor import diagnose, format_diagnosis, remedies
from gankit.training.health import HealthRules, pairwise_distance, replay

HEALTHY = {"loss/D": 1.3, "loss/G": 0.7, "scores/real": 0.2, "scores/fake": -0.1,
           "health/d_acc_real": 0.6, "health/d_acc_fake": 0.55,
           "health/grad_G_output": 1e-3, "health/diversity_ratio": 0.95}
SATURATED = {"health/d_acc_real": 1.0, "health/d_acc_fake": 1.0, "scores/real": 9.0,
             "scores/fake": -9.5}


def _records(*segments, start=100, every=100):
    """Records from (count, overrides) segments: HEALTHY values with the overrides."""
    out, step = [], start
    for count, overrides in segments:
        for _ in range(count):
            out.append({"step": step, **HEALTHY, **overrides})
            step += every
    return out


def _feed(records, config=None):
    rules = HealthRules(config or HealthConfig(warmup_steps=0))
    warnings = [rules.warning(e, r["step"]) for r in records for e in rules.update(r)]
    return rules, warnings


def test_healthy_records_raise_nothing():
    rules, warnings = _feed(_records((30, {})))
    assert warnings == [] and rules.episodes == []
    assert rules.references == {"loss/D": 1.3, "loss/G": 0.7, "health/grad_G_output": 1e-3}


def test_d_saturation_is_reported_once_when_sustained_and_again_after_clearing():
    records = _records((3, {}), (5, SATURATED), (3, {}), (3, SATURATED))
    rules, warnings = _feed(records)
    # window 3: begins at step 400, reported on the third saturated record (step 600)
    assert warnings[0] == {
        "step": 600, "warning": "d_saturated",
        "message": "D saturated since step 400: D accuracy real 1.00 / fake 1.00 (>= 0.99), "
                   "mean logits real +9.00 / fake -9.50 (beyond +-4.0)"}
    assert [(w["step"], w["warning"]) for w in warnings] == [(600, "d_saturated"),
                                                             (1400, "d_saturated")]
    first, second = rules.episodes
    assert (first.begin, first.end, first.last["step"]) == (400, 900, 800)
    assert (second.begin, second.end) == (1200, None)


def test_short_streaks_and_accurate_but_unconfident_d_are_not_saturation():
    flicker = _records((2, SATURATED), (1, {}), (2, SATURATED), (1, {}), (2, SATURATED))
    assert _feed(flicker)[1] == []
    # perfect accuracy with small margins: D still gives G a gradient
    mild = {**SATURATED, "scores/real": 2.0, "scores/fake": -2.0}
    assert _feed(_records((10, mild)))[1] == []
    one_sided = {**SATURATED, "health/d_acc_real": 0.9}
    assert _feed(_records((10, one_sided)))[1] == []


def test_vanishing_gradient_relative_to_the_early_reference():
    records = _records((3, {"health/grad_G_output": 2e-3}), (2, {}),
                       (4, {"health/grad_G_output": 1e-6}))
    rules, warnings = _feed(records)
    assert rules.references["health/grad_G_output"] == 2e-3
    # 1e-6 < 1e-3 * 2e-3: vanished from step 600, reported at step 800
    assert [(w["step"], w["warning"]) for w in warnings] == [(800, "g_grad_vanished")]
    assert "since step 600" in warnings[0]["message"]
    assert "reference 0.002, limit 2e-06" in warnings[0]["message"]
    # 100x smaller than early is still a working gradient
    assert _feed(_records((3, {}), (10, {"health/grad_G_output": 1e-5})))[1] == []


def test_vanishing_gradient_absolute_floor_without_a_usable_reference():
    rules, warnings = _feed(_records((6, {"health/grad_G_output": 0.0})))
    assert [(w["step"], w["warning"]) for w in warnings] == [(300, "g_grad_vanished")]
    assert rules.references["health/grad_G_output"] == 0.0


def test_diversity_collapse_and_the_warmup():
    records = _records((12, {"health/diversity_ratio": 0.05}))
    _, warnings = _feed(records)
    assert [(w["step"], w["warning"]) for w in warnings] == [(300, "diversity_collapsed")]
    assert warnings[0]["message"] == ("sample diversity collapsed since step 100: "
                                      "diversity_ratio 0.050 (< 0.2)")
    # with the default warmup (500 steps) the check starts at step 500
    rules, warnings = _feed(records, HealthConfig())
    assert [(w["step"], w["warning"]) for w in warnings] == [(700, "diversity_collapsed")]
    assert rules.episodes[0].begin == 500
    # a ratio above the threshold is a healthy spread
    assert _feed(_records((12, {"health/diversity_ratio": 0.3})))[1] == []


def test_mode_numbers_are_evidence_of_a_collapse():
    collapsed = {"health/diversity_ratio": 0.01, "health/modes": 1.0, "health/hq": 0.97}
    _, warnings = _feed(_records((3, collapsed)))
    assert warnings[0]["message"].endswith("diversity_ratio 0.010 (< 0.2), modes 1, hq 0.97")


def test_non_finite_loss_is_reported_on_the_first_record_even_in_warmup():
    records = _records((2, {}), (3, {"loss/D": math.nan}), (1, {"loss/G": math.inf}))
    rules, warnings = _feed(records, HealthConfig())
    assert warnings == [{"step": 300, "warning": "loss_nonfinite",
                         "message": "non-finite loss since step 300: loss/D = nan, "
                                    "loss/G = 0.7"}]
    assert rules.episodes[0].last["step"] == 600
    # NaN-free again for `window` records: cleared at the first of them
    rules, _ = _feed(_records((1, {"loss/G": math.nan}), (3, {})))
    assert (rules.episodes[0].begin, rules.episodes[0].end) == (100, 200)


def test_divergence_by_growth_and_by_absolute_size():
    # reference |loss/G| = 0.7 -> limit 1e3 * max(1, 0.7) = 1000
    records = _records((3, {}), (2, {"loss/G": 900.0}), (3, {"loss/G": 5e3}))
    rules, warnings = _feed(records)
    assert [(w["step"], w["warning"]) for w in warnings] == [(800, "loss_diverged")]
    assert "since step 600: loss/D = 1.3 (reference 1.3, limit 1.3e+03), loss/G = 5000 " \
           "(reference 0.7, limit 1e+03)" in warnings[0]["message"]
    # no reference yet: only the absolute limit (1e4) applies
    _, warnings = _feed(_records((3, {"loss/D": 2e4})))
    assert [(w["step"], w["warning"]) for w in warnings] == [(300, "loss_diverged")]
    # a WGAN-style loss that wanders by a factor 50 is not divergence
    wander = _records((3, {"loss/D": -0.5}), (10, {"loss/D": -50.0}))
    assert _feed(wander)[1] == []


def test_window_one_reports_immediately_and_other_records_are_ignored():
    rules = HealthRules(HealthConfig(window=1, warmup_steps=0))
    assert rules.update({"step": 100, "fid_2k_ring_raw": 3.0}) == []
    assert rules.update({"step": 100, "warning": "d_saturated", "message": "x"}) == []
    started = rules.update({"step": 200, **HEALTHY, **SATURATED})
    assert [e.kind for e in started] == ["d_saturated"]
    # a missing signal neither starts nor clears a condition
    no_health = {k: v for k, v in HEALTHY.items() if not k.startswith("health/")}
    assert rules.update({"step": 300, **no_health}) == []
    assert rules.episodes[0].end is None


def test_replay_equals_feeding_one_by_one():
    records = _records((3, {}), (4, SATURATED), (4, {"health/diversity_ratio": 0.0}))
    a, b = replay(records, HealthConfig(warmup_steps=0)), _feed(records)[0]
    assert [(e.kind, e.begin, e.end) for e in a.episodes] == \
        [(e.kind, e.begin, e.end) for e in b.episodes] == \
        [("d_saturated", 400, 800), ("diversity_collapsed", 800, None)]


def test_health_config_is_validated_and_overridable():
    cfg = C.resolve("mixture_stable", ["health.window=5", "health.enabled=false"])
    assert cfg.health.window == 5 and cfg.health.enabled is False
    assert C.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="health.window"):
        C.resolve("mixture_stable", ["health.window=0"])
    with pytest.raises(ValueError, match="unknown option 'health.windw'. Did you mean 'window'"):
        C.resolve("mixture_stable", ["health.windw=2"])


def test_pairwise_distance_closed_form():
    # right triangle 3-4-5: pairs 3, 4, 5 -> mean 4
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    torch.testing.assert_close(pairwise_distance(x), 4.0)
    # images are flattened: two 1x2x2 images differing by 1 everywhere -> distance 2
    images = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    torch.testing.assert_close(pairwise_distance(images), 2.0)
    assert pairwise_distance(torch.ones(5, 3)) == 0.0


def test_remedies_name_components_and_fill_in_the_run_config():
    config = C.resolve("mixture_stable", ["loss=minimax"]).to_dict()
    lines = dict(remedies("d_saturated", config))
    assert "--set loss.real_label=0.9" in lines
    assert "--set train.d_joint_batch=true" not in lines  # an mlp D has no BatchNorm
    assert "--set d_optimizer.lr=0.001" in lines  # 4e-3 / 4: a slower D (TTUR)
    assert not any("diffaugment" in line for line in lines)  # images only
    image_lines = dict(remedies("d_saturated", C.resolve("dcgan").to_dict()))
    assert "--set augmentations.diffaugment.policy=color,translation,cutout" in image_lines
    assert "--set d_optimizer.lr=5e-05" in image_lines
    assert "--set train.d_joint_batch=true" in image_lines  # dcgan's D has BatchNorm
    sn_lines = dict(remedies("d_saturated", C.resolve("sngan").to_dict()))
    assert "--set train.d_joint_batch=true" not in sn_lines
    vanished = dict(remedies("g_grad_vanished", config))
    assert not vanished["--set loss=non_saturating"].endswith("[already set in this run]")
    healthy_loss = dict(remedies("g_grad_vanished", C.resolve("mixture_stable").to_dict()))
    assert healthy_loss["--set loss=non_saturating"].endswith("[already set in this run]")
    sn = dict(remedies("loss_diverged", C.resolve("sngan").to_dict()))
    assert sn["--set discriminator.spectral_norm=true"].endswith("[already set in this run]")
    assert "--set g_optimizer.lr=0.0001 --set d_optimizer.lr=0.0001" in sn
    collapse = [line for line, _ in remedies("diversity_collapsed", None)]
    assert collapse == ["--set pack=2", "--set discriminator.minibatch_discrimination=16",
                        "--set discriminator.minibatch_stddev=4",
                        "--set regularizers.feature_matching.weight=1",
                        "--set augmentations.instance_noise.std=0.1",
                        "--set train.unrolled_steps=5"]


def test_doctor_report_on_a_synthetic_log(tmp_path):
    records = _records((5, {}), (4, {"loss/D": math.nan}), (3, {}),
                       (4, {"health/grad_G_output": 1e-9}))
    lines = [json.dumps(r) for r in records]
    lines.insert(3, json.dumps({"step": 300, "fid_2k_ring_raw": 4.0}))
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + '\n{"step": 1700, "loss/D')
    config = C.resolve("mixture_stable", ["train.steps=2000", "health.warmup_steps=0"])
    (tmp_path / "config.yaml").write_text(C.dump_yaml(config))
    d = diagnose(tmp_path)
    assert [(e.kind, e.begin, e.end) for e in d.episodes] == [
        ("loss_nonfinite", 600, 1000), ("g_grad_vanished", 1300, None)]
    text = format_diagnosis(d)
    assert "16 log records, steps 100-1600 of 2000 (running, or stopped early)" in text
    assert "2 problems found:" in text
    assert "1. non-finite loss (loss_nonfinite): from step 600 to step 1000" in text
    assert "2. G's gradients vanished (g_grad_vanished): from step 1300, still present " \
           "at the last record (step 1600)" in text
    assert "evidence at step 600: loss/D = nan, loss/G = 0.7" in text
    assert "--set g_optimizer.lr=0.002 --set d_optimizer.lr=0.002  # halve both" in text
    assert "--set loss=non_saturating" in text
    assert "no problems found" not in text
    assert "  health/grad_G_output     1e-09" in text


def test_d_saturation_is_not_checked_for_a_loss_that_does_not_saturate():
    records = _records((3, {}), (6, SATURATED))
    assert [e.kind for e in replay(records, HealthConfig(warmup_steps=0)).episodes] == \
        ["d_saturated"]
    assert replay(records, HealthConfig(warmup_steps=0), saturates=False).episodes == []


@pytest.mark.parametrize("loss, notes", [
    ("wasserstein", ["D's accuracy is not measured for loss wasserstein",
                     "D saturation is not checked for loss wasserstein"]),
    ("least_squares", ["D saturation is not checked for loss least_squares"]),
    ("non_saturating", []),
])
def test_doctor_says_which_signals_the_loss_leaves_out(tmp_path, loss, notes):
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records((3, {}))))
    (tmp_path / "config.yaml").write_text(C.dump_yaml(C.resolve("dcgan", [f"loss={loss}"])))
    report = format_diagnosis(diagnose(tmp_path))
    assert [line for line in report.splitlines() if line.startswith("note: D")] == \
        [f"note: {n}" + (": a critic's scores have no real/fake threshold" if "accuracy" in n
                         else ": G's gradient does not vanish when D is confident")
         for n in notes]
