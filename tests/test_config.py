import pytest

from fmnist_core.config import PRESETS, ConfigError, TrainConfig, describe_range, preset


def test_seed_preset_is_the_notebook_recipe():
    cfg = preset("seed")
    assert (cfg.image_size, cfg.conv1, cfg.conv2) == (16, 16, 32)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.seed) == ("sgd", 0.1, 100, 5, 0)
    assert cfg.arch == "notebook" and cfg.train_subset == 0


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"lr": 5.0}, "lr must be between 0.0001 and 1"),
        ({"epochs": 0}, "epochs must be between 1 and 30"),
        ({"batch_size": 4096}, "batch_size must be between 16 and 1024"),
        ({"image_size": 20}, "image_size must be one of 16, 28"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"lr": float("nan")}, "lr must be between"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"train_subset": 50}, "train_subset must be between 100 and 60000 or 0 for all"),
        ({"train_subset": 200, "batch_size": 256}, "must be at least batch_size"),
    ],
)
def test_bad_values_explain_the_allowed_range(change, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**change)


def test_round_trip_and_unknown_keys():
    cfg = TrainConfig(epochs=3, lr=0.05, name="x")
    data = cfg.to_dict() | {"from_the_future": 1}
    assert TrainConfig.from_dict(data) == cfg


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="seed"):
        preset("nope")
    assert set(PRESETS) >= {"seed", "quick"}
    assert "learning rate" in describe_range("lr")


def test_tta_is_a_switch_off_by_default_and_old_runs_load():
    assert TrainConfig().tta is False and preset("seed").tta is False
    with pytest.raises(ConfigError, match="tta must be true or false"):
        TrainConfig(tta=1)
    old = {k: v for k, v in preset("strong").to_dict().items() if k != "tta"}
    assert TrainConfig.from_dict(old).tta is False
