"""Tables: CSV parsing and type inference, clear errors, and CTGAN's encoding (mode-specific
normalisation, one-hot labels, missing values) round-tripped."""

import math

import numpy as np
import pytest
import torch

from gankit.data import load_dataset
from gankit.tabular.table import Column, Table, parse_csv, write_csv
from gankit.tabular.transform import TableTransform

CSV = """age,city,income,member,score
34,Paris,1200.5,yes,3
28,Lyon,,no,2
45,Paris,3000.25,YES,
51,,2500,no,5
"""


def test_types_are_inferred_and_missing_values_kept():
    t = parse_csv(CSV, "t.csv")
    assert [(c.name, c.type) for c in t.columns] == [
        ("age", "integer"), ("city", "categorical"), ("income", "continuous"),
        ("member", "boolean"), ("score", "integer")]
    assert math.isnan(t.column("income").values[1]) and t.column("city").values[3] is None
    assert [c.missing for c in t.columns] == [0, 1, 1, 0, 1]
    t = parse_csv(CSV, "t.csv", {"score": "categorical"})
    assert t.column("score").values == ["3", "2", None, "5"]


@pytest.mark.parametrize("text,message", [
    ("", "the file is empty"),
    ("a,b\n", "a header but no data rows"),
    ("a,b\n1,2\n3\n", "line 3 has 1 fields, the header 2"),
    ("a,b\n1,\n2,NA\n", "column 'b' has no value in any row"),
])
def test_bad_tables_are_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_csv(text, "t.csv")


def test_type_overrides_are_checked():
    with pytest.raises(ValueError, match="data.columns.height: no such column"):
        parse_csv(CSV, "t.csv", {"height": "categorical"})
    with pytest.raises(ValueError, match="data.columns.age=date: the type must be one of"):
        parse_csv(CSV, "t.csv", {"age": "date"})
    with pytest.raises(ValueError, match="column 'city' is set to continuous but holds"):
        parse_csv(CSV, "t.csv", {"city": "continuous"})


def test_mode_specific_normalisation_finds_the_modes_and_round_trips():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-10, 1, 300), rng.normal(20, 2, 300)])
    labels = ["a", "b", None] * 200
    table = Table([Column("v", "continuous", values.tolist()),
                   Column("c", "categorical", labels)])
    t = TableTransform.fit(table, seed=0)
    v = t.columns[0]
    assert len(v["means"]) >= 2  # the two modes (a DP mixture may keep a tiny third)
    assert min(abs(m + 10) for m in v["means"]) < 0.5 and min(abs(m - 20) for m in
                                                              v["means"]) < 0.5
    x = t.encode(table, seed=0)
    assert x.shape == (600, t.dim) and x[:, 0].abs().max() <= 0.99
    back = t.decode(x)
    assert back.column("c").values == labels  # labels, missing included, exactly
    err = np.abs(np.array(back.column("v").values) - values)
    assert err.max() < 1e-3  # float32 rounding of alpha only
    assert [s.role for s in t.spans] == ["alpha", "mode", "label"]
    assert t.discrete == [{"name": "c", "start": 1 + len(v["means"]), "width": 3,
                           "counts": [200, 200, 200]}]


def test_decoding_with_a_seed_draws_each_one_hot_block_from_its_probabilities():
    table = Table([Column("v", "continuous", [-1.0, 1.0] * 50),
                   Column("c", "categorical", ["a", "b", "c"] * 33 + ["a"])])
    t = TableTransform.fit(table, seed=0)
    n = 4000
    x = torch.zeros(n, t.dim)
    x[:, 0] = 0.25  # alpha
    k = t.dim - 4  # the mode block's width
    x[:, 1:1 + k] = 1.0 / k
    x[:, 1 + k:] = torch.tensor([0.2, 0.5, 0.3])  # G's softmax over a, b, c
    assert set(t.decode(x).column("c").values) == {"b"}  # arg-max: always the likeliest
    drawn = t.decode(x, seed=0).column("c").values
    freq = {label: drawn.count(label) / n for label in "abc"}
    # binomial s.d. <= sqrt(0.25 / 4000) = 0.0079: 0.03 is ~4 s.d.
    assert all(abs(freq[a] - p) < 0.03 for a, p in zip("abc", (0.2, 0.5, 0.3)))
    assert drawn == t.decode(x, seed=0).column("c").values  # seeded
    v = t.columns[0]  # every kept mode is drawn: each gives its own value of alpha 0.25
    expected = {round(float(np.clip(0.25 * 4 * sd + mu, -1, 1)), 5)
                for mu, sd in zip(v["means"], v["stds"])}
    assert {round(y, 5) for y in t.decode(x, seed=1).column("v").values} == expected
    assert k == len(v["means"]) >= 2


def test_missing_numbers_and_integers_survive_decoding(tmp_path):
    table = parse_csv(CSV, "t.csv")
    t = TableTransform.fit(table)
    back = t.decode(t.encode(table))
    assert back.column("age").values == [34.0, 28.0, 45.0, 51.0]
    assert math.isnan(back.column("income").values[1])
    assert back.column("member").values == ["yes", "no", "YES", "no"]
    write_csv(back, tmp_path / "out.csv")
    again = parse_csv((tmp_path / "out.csv").read_text(), "out.csv")
    assert again.column("age").values == [34.0, 28.0, 45.0, 51.0]
    assert again.column("city").values == ["Paris", "Lyon", "Paris", None]
    state = t.state_dict()
    assert TableTransform.from_state(state).dim == t.dim


def test_built_in_tables():
    ds = load_dataset("breast_cancer")
    assert len(ds) == 569 and ds.kind == "points" and ds.table.table.names[-1] == "diagnosis"
    assert torch.isfinite(ds.x).all()
    wine = load_dataset("wine", columns={"cultivar": "categorical"})
    assert wine.table.transform.discrete[0]["counts"] == [59, 71, 48]


def _t(**cols):
    return Table([Column(n, kind, vals) for n, (kind, vals) in cols.items()])


def test_column_fidelity_by_hand():
    from gankit.tabular.metrics import column_fidelity

    real = _t(v=("continuous", [1.0, 2.0, 3.0, 4.0]), c=("categorical", ["a", "a", "b", None]))
    synth = _t(v=("continuous", [3.0, 4.0, 5.0, 6.0]), c=("categorical", ["a", "b", "b", "b"]))
    f = column_fidelity(real, synth)
    assert f["fidelity_v"] == pytest.approx(0.5)  # the ECDFs differ by 2/4 at most
    # labels a, b, missing: real (.5, .25, .25), synthetic (.25, .75, 0): TV = (.25+.5+.25)/2
    assert f["fidelity_c"] == pytest.approx(0.5)
    assert f["fidelity_mean"] == pytest.approx(0.5)


def test_associations_by_hand():
    from gankit.tabular.metrics import association, association_difference

    t = _t(x=("continuous", [1.0, 2.0, 3.0, 4.0]), y=("continuous", [2.0, 4.0, 6.0, 8.0]),
           g=("categorical", ["a", "a", "b", "b"]), h=("categorical", ["u", "u", "v", "v"]))
    assert association(t, "x", "y") == pytest.approx(1.0)
    assert association(t, "g", "h") == pytest.approx(1.0)
    # eta: group means 1.5 and 3.5 around 2.5: between 4 * 1 = 4, total 5: sqrt(0.8)
    assert association(t, "g", "x") == pytest.approx(math.sqrt(0.8))
    assert association_difference(t, t) == 0.0


def test_efficacy_of_the_real_rows_themselves_is_one_and_dcr_by_hand():
    from gankit.tabular.metrics import dcr, ml_efficacy

    table = load_dataset("wine:train").table.table
    test = load_dataset("wine:test").table.table
    e = ml_efficacy(table, test, table, "cultivar")
    assert e["efficacy_ratio"] == 1.0 and e["efficacy_real"] > 0.8
    train = _t(v=("continuous", [0.0, 2.0]))  # standardised: mean 1, sd 1 -> -1, 1
    d = dcr(train, _t(v=("continuous", [3.0])), _t(v=("continuous", [2.5])))
    assert d["dcr_holdout"] == pytest.approx(1.0) and d["dcr_synthetic"] == pytest.approx(0.5)
    assert d["dcr_ratio"] == pytest.approx(0.5)


def test_table_splits_are_fixed_and_disjoint():
    a, b = load_dataset("wine:train").table.table, load_dataset("wine:test").table.table
    assert len(a) + len(b) == 178 and len(b) == 36
    rows_a = {tuple(r) for r in zip(*(c.values for c in a.columns))}
    rows_b = {tuple(r) for r in zip(*(c.values for c in b.columns))}
    assert not rows_a & rows_b
