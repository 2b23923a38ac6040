"""A CSV through the CLI: train ctgan, resume bit for bit, sample the original columns,
evaluate against held-out rows; bad tables are one-line errors."""

import json

import pytest
import torch

from gankit.cli import main
from gankit.tabular.table import read_csv
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

CSV = "age,city,income,member\n" + "".join(
    f"{20 + i % 40},{['Paris', 'Lyon', 'Nice'][i % 3]},{1000 + 37 * i if i % 7 else ''},"
    f"{'yes' if i % 2 else 'no'}\n" for i in range(120))
TINY = ["--no-progress", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=20", "--set", "train.checkpoint_interval=2",
        "--set", "train.log_interval=1"]


@pytest.fixture()
def csv_file(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    return path


def test_a_csv_trains_resumes_samples_and_evaluates(tmp_path, csv_file, capsys):
    torch.set_num_threads(1)
    data = ["--data", f"csv:{csv_file}"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "ctgan", *data, "--steps", "4", "--out", str(straight), *TINY]) == 0
    assert main(["train", "ctgan", *data, "--steps", "2", "--out", str(split), *TINY]) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", "--no-progress"]) == 0
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, split))
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])
    out = tmp_path / "synth.csv"
    assert main(["sample", str(straight), "--n", "50", "--out", str(out)]) == 0
    table = read_csv(out)
    assert table.names == ["age", "city", "income", "member"] and len(table) == 50
    assert [c.type for c in table.columns][:2] == ["integer", "categorical"]
    assert set(table.column("city").values) <= {"Paris", "Lyon", "Nice"}
    assert set(table.column("member").values) <= {"yes", "no"}
    assert all(20 <= v <= 59 for v in table.column("age").values)  # the observed range
    assert main(["eval", str(straight), "--against", f"csv:{csv_file}"]) == 0
    results = json.loads((straight / "metrics" / "eval_table.json").read_text())
    assert 0 <= results["fidelity_mean"] <= 1 and results["efficacy_target"] == "member"
    assert "dcr_ratio" in results


@pytest.mark.parametrize("text,message", [
    ("", "the file is empty"),
    ("a,b\n1,2\n3\n", "line 3 has 1 fields, the header 2"),
    ("a,b\n1,\n2,\n", "column 'b' has no value in any row"),
])
def test_bad_csv_files_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["train", "ctgan", "--data", f"csv:{path}", "--steps", "1", "--out",
                 str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_ctgan_needs_a_table_and_tables_need_ctgan(tmp_path, capsys):
    assert main(["train", "ctgan", "--data", "ring", "--steps", "1", "--out",
                 str(tmp_path / "r"), "--no-progress"]) == 2
    assert "ctgan trains on tables" in capsys.readouterr().err


def test_grunfeld_is_a_mixed_table():
    pytest.importorskip("statsmodels")
    from gankit.data import load_dataset

    ds = load_dataset("grunfeld")
    table = ds.table.table
    assert len(table) == 220 and [c.type for c in table.columns] == [
        "categorical", "integer", "continuous", "continuous", "continuous"]
    assert len(set(table.column("firm").values)) == 11


def test_bench_tabular_runs_both_synthesizers(tmp_path, capsys):
    pytest.importorskip("ctgan")
    torch.set_num_threads(1)
    assert main(["bench", "tabular", "--tables", "wine", "--seeds", "1", "--epochs", "1",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| wine | gankit |" in out and "| wine | ctgan_package |" in out
    report = json.loads((tmp_path / "results.json").read_text())
    row = report["rows"][0]
    assert 0 <= row["gankit"]["efficacy_synthetic"] <= 1
    assert 0 <= row["ctgan_package"]["fidelity_mean"] <= 1
