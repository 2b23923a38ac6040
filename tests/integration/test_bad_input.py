"""The bad-input sweep (issue 33 §1.5, §2.7): each case through the CLI gets one line
``gankit: error: ...`` naming the bad value, exit status 2, and no run directory is made."""

import json

import pytest

from gankit import cli

TINY = ["train", "dcgan", "--data", "digits", "--steps", "2", "--no-progress"]

CASES = [
    ("train.log_interval=0", "train.log_interval must be >= 1, got 0"),
    ("train.checkpoint_interval=-5", "train.checkpoint_interval must be >= 0"),
    ("train.sample_interval=-1", "train.sample_interval must be >= 0"),
    ("generator.width=0", "generator.width must be >= 1, got 0"),
    ("discriminator.width=-3", "discriminator.width must be >= 1, got -3"),
    ("g_optimizer.lr=-1", "g_optimizer.lr must be > 0, got -1.0"),
    ("d_optimizer.betas=[0.5,1.5]", "d_optimizer.betas must lie in [0, 1), got 1.5"),
    ("regularizers.r1.interval=0", "regularizers.r1.interval must be >= 1"),
    ("regularizers.r1.gamma=-1", "regularizers.r1.gamma must be >= 0, got -1.0"),
    ("regularizers.gradient_penalty.interval=0",
     "regularizers.gradient_penalty.interval must be >= 1"),
    ("train.unrolled_order=3", "train.unrolled_order must be 1 (first-order) or 2"),
    ("train.steps=[1,", "--set 'train.steps=[1,': not valid YAML (line 1, column 4)"),
    ("train.steps=!!python/object/apply:os.system [echo]",
     "tags such as !!python/... are refused"),
]


@pytest.mark.parametrize("setting, message", CASES, ids=[c[0] for c in CASES])
def test_bad_setting_is_one_line_exit_2(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    assert cli.main([*TINY, "--out", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()  # refused before any work


def test_self_conditioning_with_a_concat_discriminator_is_refused(tmp_path, capsys):
    argv = [*TINY, "--out", str(tmp_path / "run"), "--set", "self_condition.clusters=3",
            "--set", "generator.conditioning=concat", "--set",
            "discriminator.conditioning=concat"]
    assert cli.main(argv) == 2
    assert "discriminator.conditioning=projection" in capsys.readouterr().err


def test_second_order_unrolling_refuses_weight_clipping(tmp_path, capsys):
    argv = ["train", "wgan", "--data", "digits", "--steps", "2", "--no-progress", "--out",
            str(tmp_path / "run"), "--set", "train.unrolled_steps=2"]
    assert cli.main(argv) == 2
    assert "use --set train.unrolled_order=1 with weight clipping" in capsys.readouterr().err


def test_doctor_refuses_a_python_tag_in_config_yaml(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "loss/D": 1.0, "loss/G": 1.0}) + "\n")
    (run / "config.yaml").write_text("train:\n  steps: !!python/object/apply:os.system [ls]\n")
    assert cli.main(["doctor", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.yaml'}: not valid YAML (line 2" in err and err.count("\n") == 1


def test_an_internal_key_error_is_a_traceback_not_a_user_error(monkeypatch):
    def broken(args):
        raise KeyError("internal")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    with pytest.raises(KeyError, match="internal"):
        cli.main(["list"])
