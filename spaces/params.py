"""Building blocks shared by several spaces: each suggests one group of flat TrainConfig keys.

A parameter name must keep ONE distribution across all spaces that can appear in the same study
(Optuna rejects a categorical whose choices change between trials, and multivariate TPE only
models a parameter jointly when its distribution never changes), so every range lives here once.
"""
from __future__ import annotations

from typing import Any

import optuna

from core.registry import MOTION_ENCODERS as MOTION_ENCODER_REGISTRY

TEMPERATURE = (0.02, 0.2)          # log scale; TMR/CLIP-style InfoNCE temperatures
LR = (1e-5, 1e-3)                  # log scale
WEIGHT_DECAY = (1e-4, 0.1)         # log scale
DROPOUT = (0.0, 0.3)
BATCH_SIZES = (32, 64, 128)
MSE_WEIGHT = (0.0, 0.5)            # aligned: alpha
UNIFORMITY_WEIGHT = (1e-3, 0.1)    # aligned: beta, log scale
KL_WEIGHT = (1e-6, 1e-3)           # temos: lambda_KL, log scale
# 0.0 = negative filtering off; otherwise the caption-similarity threshold above which an
# in-batch "negative" counts as a positive (TMR uses 0.8). A categorical keeps "off" a real
# option with one Optuna distribution; 0.05 steps are finer than the metric's noise.
FILTER_THRESHOLDS = (0.0, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

MOTION_ENCODERS = MOTION_ENCODER_REGISTRY.names()   # every registered encoder (core/registry.py)
TRANSFORMER_LAYERS = (2, 8)
GRU_LAYERS = (1, 4)                # a recurrent stack deeper than 4 only adds latency
SSM_LAYERS = (1, 4)                # ssm: bidirectional selective-SSM layers (each a forward and a backward block)
SSM_STATES = (4, 8, 16)            # ssm: state size N per channel
SSM_POOLING = "mean"               # fixed: one pooling categorical per family keeps Optuna's distributions fixed
PARTS_POOLING = "token"            # fixed: the parts encoder reads its [CLS] token
PART_WEIGHT = (0.0, 2.0)           # parts: lambda_part (0 = global loss only: the ablation is in the space)
PART_TEMPERATURE = (0.03, 0.3)     # parts: tau' of the soft part loss, log scale
NUM_HEADS = (2, 4, 8)
HIDDEN_DIM = (128, 512, 64)        # low, high, step: a multiple of 64 is divisible by every head count
# One choice set for both transformer encoders ('token' = the learned summary/distribution token).
TRANSFORMER_POOLINGS = ("token", "mean", "attention")
GRU_POOLING = "attention"          # fixed: the GRU has no summary token; attention beats mean there
TEXT_MODES = ("frozen", "finetune")
TEXT_FINETUNE_LAYERS = (1, 6)      # top-N layers of the 6-layer MiniLM
TEXT_LR = (1e-6, 1e-4)             # log scale


def suggest_optimizer(trial: optuna.Trial) -> None:
    """lr, weight_decay, dropout, batch_size."""
    trial.suggest_float("lr", *LR, log=True)
    trial.suggest_float("weight_decay", *WEIGHT_DECAY, log=True)
    trial.suggest_float("dropout", *DROPOUT)
    trial.suggest_categorical("batch_size", BATCH_SIZES)


def suggest_temperature(trial: optuna.Trial) -> None:
    trial.suggest_float("temperature", *TEMPERATURE, log=True)


def suggest_aligned(trial: optuna.Trial) -> dict[str, Any]:
    """InfoNCE + alpha * MSE(positives) + beta * uniformity."""
    suggest_temperature(trial)
    trial.suggest_float("mse_weight", *MSE_WEIGHT)
    trial.suggest_float("uniformity_weight", *UNIFORMITY_WEIGHT, log=True)
    return {"loss": "aligned", "vae": False}


def suggest_infonce(trial: optuna.Trial) -> dict[str, Any]:
    suggest_temperature(trial)
    trial.suggest_categorical("learn_temperature", (False, True))
    trial.suggest_categorical("filter_threshold", FILTER_THRESHOLDS)
    return {"loss": "infonce", "vae": False}


def suggest_temos(trial: optuna.Trial) -> dict[str, Any]:
    suggest_temperature(trial)
    trial.suggest_float("kl_weight", *KL_WEIGHT, log=True)
    return {"loss": "temos", "vae": True}  # the TEMOS loss needs the VAE head


def suggest_ntxent(trial: optuna.Trial) -> dict[str, Any]:
    """SimCLR NT-Xent over both modalities (texts are negatives of texts too)."""
    suggest_temperature(trial)
    trial.suggest_categorical("filter_threshold", FILTER_THRESHOLDS)
    return {"loss": "ntxent", "vae": False}


LOSS_FAMILIES = {"aligned": suggest_aligned, "infonce": suggest_infonce, "temos": suggest_temos,
                 "ntxent": suggest_ntxent}


def suggest_architecture(trial: optuna.Trial) -> dict[str, Any]:
    """Motion encoder (+ its depth/width/heads/pooling) and the text branch; returns fixed values."""
    fixed: dict[str, Any] = {}
    encoder = trial.suggest_categorical("motion_encoder", MOTION_ENCODERS)
    low, high, step = HIDDEN_DIM
    trial.suggest_int("hidden_dim", low, high, step=step)
    family = MOTION_ENCODER_REGISTRY.trait(encoder, "family")
    if family == "recurrent":
        trial.suggest_int("num_layers", *GRU_LAYERS)
        fixed["motion_pooling"] = GRU_POOLING
    elif family == "ssm":
        trial.suggest_int("num_layers", *SSM_LAYERS)
        trial.suggest_categorical("ssm_state", SSM_STATES)
        fixed["motion_pooling"] = SSM_POOLING
    elif family == "parts":
        trial.suggest_int("num_layers", *TRANSFORMER_LAYERS)
        trial.suggest_categorical("num_heads", NUM_HEADS)
        trial.suggest_float("part_weight", *PART_WEIGHT)
        trial.suggest_float("part_temperature", *PART_TEMPERATURE, log=True)
        fixed["motion_pooling"] = PARTS_POOLING
    else:
        trial.suggest_int("num_layers", *TRANSFORMER_LAYERS)
        trial.suggest_categorical("num_heads", NUM_HEADS)
        trial.suggest_categorical("motion_pooling", TRANSFORMER_POOLINGS)
    if trial.suggest_categorical("text_mode", TEXT_MODES) == "finetune":
        trial.suggest_int("text_finetune_layers", *TEXT_FINETUNE_LAYERS)
        trial.suggest_float("text_lr", *TEXT_LR, log=True)
    return fixed
