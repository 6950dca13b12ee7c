"""The named search spaces (``run_search.py --space NAME``); ranges are defined in ``params.py``.

Every docstring lists what is searched and what is fixed; keys a space leaves out keep the run's
base config (TrainConfig defaults, ``--set`` overrides, ``--max-epochs``, data flags).
"""
from __future__ import annotations

from typing import Any

import optuna

from . import params as p
from .registry import register_space


@register_space
def aligned_loss(trial: optuna.Trial) -> dict[str, Any]:
    """The aligned contrastive loss (InfoNCE + MSE on positives + uniformity) and its optimizer.

    Searched:
      temperature        log-uniform [0.02, 0.2]
      mse_weight         uniform [0, 0.5]
      uniformity_weight  log-uniform [1e-3, 0.1]
      lr                 log-uniform [1e-5, 1e-3]
      weight_decay       log-uniform [1e-4, 0.1]
      dropout            uniform [0, 0.3]
      batch_size         {32, 64, 128}
    Fixed: loss=aligned, vae=false; architecture = base config (TMR encoder by default).
    """
    fixed = p.suggest_aligned(trial)
    p.suggest_optimizer(trial)
    return fixed


@register_space
def architecture(trial: optuna.Trial) -> dict[str, Any]:
    """Motion-encoder architecture and text branch, with the loss/optimizer of the base config.

    Searched:
      motion_encoder        {tmr, transformer, gru, ssm, parts}   (every encoder in core/registry.py)
      hidden_dim            int [128, 512] step 64 (divisible by every head count)
      num_layers            int [2, 8] (tmr, transformer, parts); int [1, 4] (gru, ssm)
      num_heads             {2, 4, 8}                   (tmr, transformer, parts)
      motion_pooling        {token, mean, attention}    (tmr, transformer only)
      ssm_state             {4, 8, 16}                  (ssm only)
      part_weight           uniform [0, 2]              (parts only: lambda_part; 0 = global loss only)
      part_temperature      log-uniform [0.03, 0.3]     (parts only: tau' of the soft part loss)
      text_mode             {frozen, finetune}
      text_finetune_layers  int [1, 6]                  (finetune only: top-N MiniLM layers)
      text_lr               log-uniform [1e-6, 1e-4]    (finetune only)
    Fixed: motion_pooling=attention for gru, mean for ssm, token for parts; everything else = base config.
    The parts encoder needs data with known joints; part texts (synthetic corpus, GAR annotations) turn on its
    part loss, without them it trains with the global loss only.
    """
    return p.suggest_architecture(trial)


@register_space
def temos(trial: optuna.Trial) -> dict[str, Any]:
    """TEMOS-style VAE retrieval (contrastive + KL on the motion/text distributions).

    Searched:
      temperature   log-uniform [0.02, 0.2]
      kl_weight     log-uniform [1e-6, 1e-3]
      lr            log-uniform [1e-5, 1e-3]
      weight_decay  log-uniform [1e-4, 0.1]
      dropout       uniform [0, 0.3]
      batch_size    {32, 64, 128}
    Fixed: loss=temos, vae=true (the TEMOS loss needs the VAE head).
    """
    fixed = p.suggest_temos(trial)
    p.suggest_optimizer(trial)
    return fixed


@register_space
def infonce(trial: optuna.Trial) -> dict[str, Any]:
    """Symmetric InfoNCE with optional learned temperature and TMR negative filtering.

    Searched:
      temperature        log-uniform [0.02, 0.2] (the initial value when learned)
      learn_temperature  {false, true}
      filter_threshold   {0 (off), 0.6, 0.65, ..., 0.95} (caption-similarity threshold)
      lr                 log-uniform [1e-5, 1e-3]
      weight_decay       log-uniform [1e-4, 0.1]
      dropout            uniform [0, 0.3]
      batch_size         {32, 64, 128}
    Fixed: loss=infonce, vae=false.
    """
    fixed = p.suggest_infonce(trial)
    p.suggest_optimizer(trial)
    return fixed


@register_space
def full(trial: optuna.Trial) -> dict[str, Any]:
    """Everything: the loss family first, then its parameters, the optimizer and the architecture.

    Searched:
      loss               {aligned, infonce, temos, ntxent}, then that family's parameters:
        aligned:  temperature log [0.02, 0.2], mse_weight [0, 0.5], uniformity_weight log [1e-3, 0.1]
        infonce:  temperature log [0.02, 0.2], learn_temperature {false, true},
                  filter_threshold {0 (off), 0.6, 0.65, ..., 0.95}
        temos:    temperature log [0.02, 0.2], kl_weight log [1e-6, 1e-3]
        ntxent:   temperature log [0.02, 0.2], filter_threshold {0 (off), 0.6, ..., 0.95}
      lr log [1e-5, 1e-3], weight_decay log [1e-4, 0.1], dropout [0, 0.3], batch_size {32, 64, 128}
      motion_encoder {tmr, transformer, gru, ssm, parts}, hidden_dim int [128, 512] step 64,
      num_layers int [2, 8] (gru, ssm: [1, 4]), num_heads {2, 4, 8} (transformers, parts), motion_pooling
      {token, mean, attention} (tmr, transformer), ssm_state {4, 8, 16} (ssm only), part_weight [0, 2] and
      part_temperature log [0.03, 0.3] (parts only), text_mode {frozen, finetune}
      (+ text_finetune_layers int [1, 6], text_lr log [1e-6, 1e-4] when finetune)
    Fixed: vae=true only for temos; motion_pooling=attention for gru, mean for ssm, token for parts.
    """
    family = trial.suggest_categorical("loss", tuple(p.LOSS_FAMILIES))
    fixed = p.LOSS_FAMILIES[family](trial)
    # The family's own 'loss' constant would duplicate the sampled key; the sample is the truth.
    fixed.pop("loss")
    p.suggest_optimizer(trial)
    fixed.update(p.suggest_architecture(trial))
    return fixed
