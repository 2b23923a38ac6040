"""Faults around a run directory, through the CLI: kills, stray files, a second run on the
same directory, a full disk, a torn log. Each run is a few steps of a tiny DCGAN."""

import json
import math

from gankit.cli import main
from gankit.utils.io import json_record

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=8", "--set", "train.log_interval=2",
        "--set", "train.sample_interval=0", "--set", "train.checkpoint_interval=2",
        "--data", "digits", "--no-progress"]


def _train(run, steps=4, *extra):
    return main(["train", "dcgan", "--steps", str(steps), "--out", str(run), *TINY, *extra])


def _steps(run):
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("gankit: error: ")]
    assert len(line) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in line[0], line[0]
    return line[0]


def test_resume_after_a_kill_mid_log_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run) == 0
    for f in (run / "checkpoints").glob("step_00000004.*"):
        f.unlink()
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 5, "loss/D": 0.')
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert f"gankit: warning: {run / 'log.jsonl'}, line 3:" in capsys.readouterr().err
    assert _steps(run) == [2, 4, 6]


def test_doctor_reads_a_logged_non_finite_loss(tmp_path, capsys):
    records = [{"step": s, "loss/D": 0.7, "loss/G": 0.7} for s in (100, 200, 300)]
    records[1]["loss/D"] = math.nan
    (tmp_path / "log.jsonl").write_text("".join(json_record(r) + "\n" for r in records))
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("1. non-finite loss (loss_nonfinite): from step 200, still present at the last "
            "record (step 300)") in out
    assert "evidence at step 200: loss/D = nan, loss/G = 0.7" in out
