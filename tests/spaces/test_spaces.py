"""Search spaces: registry, valid TrainConfig keys, conditional structure, documented ranges."""
from __future__ import annotations

import random
import re
import subprocess
import sys
import warnings

import optuna
import pytest

import spaces
from core.config import TrainConfig, default_flat
from spaces import SpaceError, get_space, list_spaces, register_space, sample_space
from spaces import params as p
from spaces.registry import _SPACES

BUILTIN = ("aligned_loss", "architecture", "temos", "infonce", "full")
SAMPLES = 20

optuna.logging.set_verbosity(optuna.logging.WARNING)


def samples_of(name: str, n: int = SAMPLES, seed: int = 0) -> list[dict]:
    """n configs from a multivariate-TPE in-memory study (past its random start-up phase)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=5)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(sample_space(get_space(name), trial))
        study.tell(trial, rng.random())
    return out


@pytest.fixture(scope="module")
def sampled() -> dict[str, list[dict]]:
    return {name: samples_of(name) for name in BUILTIN}


def test_registry_lists_every_builtin_space_with_its_doc():
    listed = list_spaces()
    assert set(BUILTIN) <= set(listed)
    for name in BUILTIN:
        assert "Searched:" in listed[name] and "Fixed:" in listed[name], name


def test_unknown_space_error_lists_known_names():
    with pytest.raises(SpaceError) as err:
        get_space("aligned")
    message = str(err.value)
    assert "'aligned'" in message
    for name in BUILTIN:
        assert name in message


def test_adding_a_space_is_one_decorated_function():
    def tiny_space(trial):
        """Searched: lr log [1e-4, 1e-3]. Fixed: nothing."""
        trial.suggest_float("lr", 1e-4, 1e-3, log=True)

    try:
        register_space(tiny_space)
        assert get_space("tiny_space") is tiny_space
        assert "lr log" in list_spaces()["tiny_space"]
        study = optuna.create_study()
        assert set(sample_space(tiny_space, study.ask())) == {"lr"}
    finally:
        _SPACES.pop("tiny_space", None)


def test_register_rejects_undocumented_and_duplicate_names():
    def nodoc(trial):
        return None

    with pytest.raises(SpaceError, match="docstring"):
        register_space(nodoc)

    def aligned_loss(trial):
        """An impostor."""

    with pytest.raises(SpaceError, match="registered twice"):
        register_space(aligned_loss)
    assert get_space("aligned_loss") is spaces.definitions.aligned_loss


@pytest.mark.parametrize("name", BUILTIN)
def test_every_sample_is_a_valid_train_config(sampled, name):
    known = TrainConfig.known_keys()
    for config in sampled[name]:
        assert set(config) <= set(known), set(config) - set(known)
        TrainConfig.from_flat({**default_flat(), **config})  # raises ConfigError if invalid


@pytest.mark.parametrize("name", BUILTIN)
def test_docstring_names_every_key_the_space_sets(sampled, name):
    doc = list_spaces()[name]
    keys = set().union(*(c.keys() for c in sampled[name]))
    missing = [k for k in keys if not re.search(rf"\b{k}\b", doc)]
    assert not missing, f"{name} docstring does not mention {missing}"


def in_range(value, low, high):
    return low <= value <= high


def test_aligned_loss_ranges_and_fixed_values(sampled):
    for c in sampled["aligned_loss"]:
        assert c["loss"] == "aligned" and c["vae"] is False
        assert in_range(c["temperature"], *p.TEMPERATURE)
        assert in_range(c["mse_weight"], *p.MSE_WEIGHT)
        assert in_range(c["uniformity_weight"], *p.UNIFORMITY_WEIGHT)
        assert in_range(c["lr"], *p.LR) and in_range(c["weight_decay"], *p.WEIGHT_DECAY)
        assert in_range(c["dropout"], *p.DROPOUT) and c["batch_size"] in p.BATCH_SIZES


def test_architecture_is_conditional_on_encoder_and_text_mode(sampled):
    configs = sampled["architecture"]
    assert {c["motion_encoder"] for c in configs} == set(p.MOTION_ENCODERS)  # the draws cover every encoder
    for c in configs:
        assert c["hidden_dim"] % 64 == 0 and 128 <= c["hidden_dim"] <= 512
        if c["motion_encoder"] == "gru":
            assert "num_heads" not in c and c["motion_pooling"] == p.GRU_POOLING
            assert in_range(c["num_layers"], *p.GRU_LAYERS)
        elif c["motion_encoder"] == "ssm":
            assert "num_heads" not in c and c["motion_pooling"] == p.SSM_POOLING
            assert in_range(c["num_layers"], *p.SSM_LAYERS) and c["ssm_state"] in p.SSM_STATES
        elif c["motion_encoder"] == "parts":
            assert c["motion_pooling"] == p.PARTS_POOLING and c["hidden_dim"] % c["num_heads"] == 0
            assert in_range(c["part_weight"], *p.PART_WEIGHT) and in_range(c["part_temperature"], *p.PART_TEMPERATURE)
        else:
            assert c["hidden_dim"] % c["num_heads"] == 0
            assert c["motion_pooling"] in p.TRANSFORMER_POOLINGS
            assert in_range(c["num_layers"], *p.TRANSFORMER_LAYERS)
        assert ("part_weight" in c) == (c["motion_encoder"] == "parts")
        finetune = c["text_mode"] == "finetune"
        assert ("text_finetune_layers" in c) == finetune and ("text_lr" in c) == finetune


def test_temos_and_infonce_fixed_values(sampled):
    for c in sampled["temos"]:
        assert c["loss"] == "temos" and c["vae"] is True and in_range(c["kl_weight"], *p.KL_WEIGHT)
    for c in sampled["infonce"]:
        assert c["loss"] == "infonce" and c["vae"] is False
        assert c["filter_threshold"] == 0.0 or 0.6 <= c["filter_threshold"] <= 0.95
        assert isinstance(c["learn_temperature"], bool)


def test_full_picks_the_family_then_only_its_parameters():
    family_keys = {"aligned": {"mse_weight", "uniformity_weight"},
                   "infonce": {"learn_temperature", "filter_threshold"}, "temos": {"kl_weight"},
                   "ntxent": {"filter_threshold"}}
    configs = samples_of("full", n=60, seed=1)
    assert {c["loss"] for c in configs} == set(family_keys)
    for c in configs:
        own = family_keys[c["loss"]]
        others = set().union(*(v for k, v in family_keys.items() if k != c["loss"])) - own
        assert own <= set(c) and not (others & set(c)), c
        assert c["vae"] is (c["loss"] == "temos")
        assert {"motion_encoder", "hidden_dim", "num_layers", "text_mode", "lr"} <= set(c)


def test_spaces_do_not_import_ray():
    code = "import sys, spaces; spaces.list_spaces(); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
