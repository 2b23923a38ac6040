"""Sizes that cannot fit in memory are refused before anything is allocated."""

import re

import pytest

from gankit.cli import main
from gankit.utils import guards

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--data", "digits", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mem") / "run"
    assert main(["train", "dcgan", "--steps", "1", "--out", str(out), *TINY]) == 0
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("refine", [[], ["--refine"]])
def test_sample_refuses_an_n_that_cannot_fit(run, tmp_path, capsys, refine):
    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "2000000000", "--out", str(out), *refine]) == 2
    err = _one_line_error(capsys)
    # latents (z_dim 100) and two copies of the 1 x 8 x 8 samples: 4 * (100 + 128) bytes each
    need = 2_000_000_000 * 4 * (100 + 2 * 64)
    assert f"--n 2000000000 samples of shape (1, 8, 8) would need {guards.format_bytes(need)}" \
        in err
    assert re.search(r"but [0-9.]+ [KMGT]?B of memory is available", err)
    assert "smaller --n" in err and "different --seed" in err
    assert not out.exists()


def test_a_resolution_that_cannot_fit_is_refused(tmp_path, capsys):
    run = tmp_path / "big"
    assert main(["train", "dcgan", "--steps", "1", "--out", str(run), *TINY,
                 "--set", "data.resolution=100000"]) == 2
    err = _one_line_error(capsys)
    need = 1797 * 1 * 100_000 ** 2 * 4  # N * C * R * R float32
    assert (f"digits at resolution 100000: 1797 x 1 x 100000 x 100000 float32 images would "
            f"need {guards.format_bytes(need)}") in err
    assert "smaller resolution" in err


def test_available_memory_reads_meminfo_then_sysconf(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683784 kB\nMemFree:  100 kB\n"
                       "MemAvailable:   23391112 kB\n")
    assert guards.available_memory(meminfo) == 23391112 * 1024
    monkeypatch.setattr(guards.os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096,
                                                            "SC_AVPHYS_PAGES": 10}[name])
    assert guards.available_memory(tmp_path / "missing") == 40960
    meminfo.write_text("MemTotal: 5 kB\n")  # no MemAvailable line: sysconf
    assert guards.available_memory(meminfo) == 40960

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(guards.os, "sysconf", no_sysconf)
    assert guards.available_memory(tmp_path / "missing") is None
    monkeypatch.setattr(guards, "available_memory", lambda path=None: None)
    guards.check_memory(10 ** 30, "anything", "no fix needed")  # unknown: not refused


def test_format_bytes_by_hand():
    assert [guards.format_bytes(b) for b in (999, 1500, 2_500_000, 7.2e13, 3e15)] == [
        "999 B", "1.5 kB", "2.5 MB", "72.0 TB", "3000.0 TB"]
