"""Config resolution: presets, --set overrides, type checks and errors."""

import pytest

from gankit import config as C


def test_presets_cite_their_paper():
    expected = {"gan": "Goodfellow", "dcgan": "Radford", "wgan": "Arjovsky",
                "wgan_gp": "Gulrajani", "lsgan": "Mao", "sngan": "Miyato"}
    for name, author in expected.items():
        assert author in C.preset_description(name)


@pytest.mark.parametrize("preset,checks", [
    ("dcgan", {"g_optimizer.options.lr": 2e-4, "g_optimizer.options.betas": (0.5, 0.999)}),
    ("wgan", {"d_optimizer.name": "rmsprop", "d_optimizer.options.lr": 5e-5,
              "train.d_steps": 5, "loss.name": "wasserstein"}),
    ("wgan_gp", {"d_optimizer.options.lr": 1e-4, "d_optimizer.options.betas": (0.5, 0.9),
                 "train.d_steps": 5}),
    ("sngan", {"loss.name": "hinge", "discriminator.options.spectral_norm": True,
               "d_optimizer.options.betas": (0.0, 0.9), "train.d_steps": 5}),
    ("lsgan", {"loss.name": "least_squares"}),
])
def test_paper_hyperparameters(preset, checks):
    cfg = C.resolve(preset)
    for dotted, value in checks.items():
        node = cfg
        for k in dotted.split("."):
            node = node[k] if isinstance(node, dict) else getattr(node, k)
        assert node == value, dotted
    if preset == "wgan":
        assert cfg.hooks["weight_clip"] == {"clip": 0.01}
    if preset == "wgan_gp":
        assert cfg.regularizers["gradient_penalty"]["weight"] == 10.0
        assert "weight_clip" not in cfg.hooks


def test_overrides_are_typed_and_can_remove_components():
    cfg = C.resolve("dcgan", ["train.batch_size=128", "g_optimizer.lr=1e-4", "hooks.ema=null",
                              "regularizers.r1.gamma=0.5", "loss=hinge"])
    assert cfg.train.batch_size == 128
    assert cfg.g_optimizer.options["lr"] == 1e-4
    assert "ema" not in cfg.hooks
    assert cfg.regularizers["r1"] == {"gamma": 0.5, "interval": 1}
    assert cfg.loss.name == "hinge"


@pytest.mark.parametrize("override,error,match", [
    ("train.batch_size=1.5", TypeError, "train.batch_size: expected an integer, got 1.5"),
    ("train.device=tpu", ValueError, "train.device must be auto, cpu or cuda"),
    ("g_optimizer.betas=[0.5]", TypeError, "expected 2 values"),
    ("discriminator.spectral_norm=yes please", TypeError, "expected true or false"),
    ("trian.steps=3", ValueError, "unknown option 'trian'. Did you mean 'train'?"),
    ("regularizers.r1.gama=1", ValueError, "Did you mean 'gamma'?"),
    ("train.steps", ValueError, "expected key=value"),
    ("train.lr_decay=cosine", ValueError, "train.lr_decay must be none or linear, got 'cosine'"),
    ("train.lr_decay_start=1.0", ValueError,
     "train.lr_decay_start must lie in [0, 1.*fraction of train.steps.*got 1.0"),
])
def test_bad_overrides(override, error, match):
    with pytest.raises(error, match=match.replace("[", r"\[").replace("?", r"\?")):
        C.resolve("dcgan", [override])


def test_config_round_trips_through_dict():
    cfg = C.resolve("wgan_gp", ["train.seed=3"])
    assert C.from_dict(cfg.to_dict()) == cfg
    assert C.diff(cfg.to_dict(), C.resolve("wgan_gp").to_dict()) == ["train.seed: 3 -> 0"]


def test_a_stored_config_loads_without_removed_options():
    from gankit.config import from_dict, upgrade

    old = C.resolve("dcgan").to_dict()
    old["generator"]["options"]["output_range"] = None  # written before it was removed
    old["regularizers"] = {"ot_matching": {"weight": 0.05}}
    assert from_dict(upgrade(old, for_training=False)).regularizers == {}
    with pytest.raises(ValueError, match="used regularizers.ot_matching, which gankit no longer"):
        upgrade(old)
    old["regularizers"] = {}
    assert "output_range" not in upgrade(old)["generator"]["options"]
    old["generator"]["options"]["output_range"] = [-1.5, 1.05]
    with pytest.raises(ValueError, match="generator.output_range"):
        upgrade(old)
