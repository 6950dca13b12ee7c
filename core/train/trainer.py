"""The per-epoch training function every search trial runs (plain PyTorch; no ray, no wandb).

    history = train_retrieval(config, reporter, shared=shared, resume_from=checkpoint_dir)

Each epoch: train on the train split, evaluate on ``eval_split`` (val), then call
``reporter(metrics, checkpoint_dir)`` once.  Metrics (see /work docs in README):
  epoch, recall_at_1 (PRIMARY: text->motion R@1 %, the seed's official 30 x 32 protocol),
  recall_at_{2,3,5,10}, weighted_recall, medr, m2t_recall_at_{1,5}, m2t_weighted_recall,
  full_{t2m,m2t}_{R1,R2,R3,R5,R10,MedR} (whole split), small_{t2m,m2t}_{R1,R5,R10,MedR} (TMR 32-batches),
  [eq_recall_at_1, eq_weighted_recall], alignment_gap, centroid_distance, mean_diag_sim,
  {recall_at_1,weighted_recall,full_t2m_R1[,eq_recall_at_1]}_{lo,hi} (95 % bootstrap CI over queries),
  train_loss, loss_<term>, lr, epoch_seconds, samples_per_second, num_params, finished (True on the run's
  last epoch: max epochs or patience).
Every epoch's randomness is derived from (seed, epoch), and the checkpoint holds model, optimizer,
scheduler and RNG state, so resuming from epoch k's checkpoint reproduces epoch k+1 exactly.

``python -m core.train`` runs one config without Ray (see core/train_cli.py). ``core.train`` re-exports this
module's names lazily (core/train/__init__.py).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..checkpoint import read_checkpoint, save_checkpoint
from ..config import ConfigError, TrainConfig
from ..device import pick_device
from ..data.batching import BatchBuilder
from ..bootstrap import credits_to_arrays
from ..evaluate import embed_split, evaluate_split, text_embeddings
from ..memory import release_free_heap
from ..precision import autocast, autocast_enabled
from ..losses import build_loss
from ..model import build_model
from ..shared import SharedInputs, part_loss_active, prepare_shared

Reporter = Callable[[dict, "str | None"], None]
# Freed activation memory goes back to the OS every this many steps (core/memory.py): glibc's heap fragments with
# every length-bucketed batch, so a process's peak grew with the number of steps in an epoch, i.e. with the
# corpus (default model, 72 steps: +3.4 GB over the live tensors, against +2.0 GB after 6 steps).
TRIM_EVERY_STEPS = 8
# Keys that may differ between a checkpoint and the config resuming it (they change nothing learned).
RESUMABLE_DIFFERENCES = {"epochs", "patience", "device", "num_threads", "cache_dir", "amp"}


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN/inf: this configuration diverged."""


def assigned_threads(requested: int) -> int:
    """Threads for this process: the config's, else what Ray assigned (OMP_NUM_THREADS), else the CPUs we may use."""
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up from 0 to 1, then cosine decay to 0 at total_steps."""
    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _seed_epoch(seed: int, epoch: int) -> np.random.Generator:
    torch.manual_seed(seed * 100_003 + epoch)
    return np.random.default_rng([seed, epoch])


def _check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any], where: str) -> None:
    diff = sorted(k for k in set(saved) | set(current)
                  if k not in RESUMABLE_DIFFERENCES and saved.get(k) != current.get(k))
    if diff:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}" for k in diff[:5])
        raise ConfigError(f"checkpoint {where} does not match this config ({shown}). "
                          "Resume with the config it was trained with, or start a new run.")


class _Trainer:
    """State of one training run; ``train_retrieval`` is the public face."""

    def __init__(self, cfg: TrainConfig, flat: dict, shared: SharedInputs):
        self.cfg, self.flat, self.shared = cfg, flat, shared
        self.device = pick_device(cfg.runtime.device)
        if self.device.type == "cpu":
            torch.set_num_threads(assigned_threads(cfg.runtime.num_threads))
        torch.manual_seed(cfg.optim.seed)
        corpus = shared.corpus
        self.train_idx = corpus.training_split()   # DataError below one batch of 2: no step to take
        self.eval_idx = corpus.scored_split(cfg.data.eval_split)
        self.builder = BatchBuilder(corpus, shared.mean, shared.std, cfg.data.max_frames, cfg.augment)
        self.frozen = shared.frozen_features(cfg.text) if cfg.text.text_mode == "frozen" else None
        self.part_loss = part_loss_active(cfg, corpus)
        needs_sentences = cfg.loss.filter_threshold > 0 or self.part_loss
        self.sentences = shared.sentence_features(cfg.text) if needs_sentences else None
        self.model = build_model(cfg, corpus.dim, self.frozen.dim if self.frozen else None).to(self.device)
        self.loss_fn = build_loss(cfg.loss)
        self.optimizer = torch.optim.AdamW(self.model.param_groups(cfg.optim, cfg.text))
        bs = cfg.optim.batch_size
        self.steps_per_epoch = max(1, len(self.train_idx) // bs) if len(self.train_idx) >= bs else 1
        total = self.steps_per_epoch * cfg.optim.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(total, int(cfg.optim.warmup_frac * total)))
        self.amp = autocast_enabled(self.device, cfg.runtime.amp)
        self.epoch, self.best, self.bad_epochs, self.history = 0, -math.inf, 0, []
        self.num_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "best": self.best,
                "bad_epochs": self.bad_epochs, "history": self.history, "config": self.flat,
                "mean": self.shared.mean, "std": self.shared.std, "torch_rng": torch.get_rng_state(),
                "corpus_hash": self.shared.corpus.content_hash, "motion_dim": self.shared.corpus.dim,
                "frozen_text_dim": self.frozen.dim if self.frozen else None}

    def restore(self, directory: str | Path) -> None:
        state = read_checkpoint(directory, map_location=self.device, training=True)
        _check_resumable(state["config"], self.flat, str(directory))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.bad_epochs = state["epoch"], state["best"], state["bad_epochs"]
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self) -> dict[str, float]:
        rng = _seed_epoch(self.cfg.optim.seed, self.epoch + 1)
        self.model.train()
        sums: dict[str, float] = {}
        steps = samples = 0
        for idx in self.builder.epoch_batches(self.train_idx, self.cfg.optim.batch_size, rng,
                                              bucket=self.cfg.data.bucket_by_length):
            batch = self.builder.build(idx, rng).to(self.device)
            with autocast(self.device, self.amp):
                text = text_embeddings(self.model, batch.texts, self.frozen, self.device)
                out = self.model.encode_motion(batch.motion, batch.mask)
                sent = (self.sentences.lookup(batch.texts).to(self.device)
                        if self.sentences and self.cfg.loss.filter_threshold > 0 else None)
                terms = self.loss_fn(text.float(), out["embedding"].float(), temperature=self.model.temperature(),
                                     sent_emb=sent, mu=out.get("mu"), logvar=out.get("logvar"),
                                     parts=self._part_inputs(batch, out) if self.part_loss else None)
            loss = terms["total"]
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {self.epoch + 1}, step {steps + 1} "
                    f"(lr={self.cfg.optim.lr:g}, temperature={self.cfg.loss.temperature:g}, loss={self.cfg.loss.loss}).")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            if not torch.isfinite(norm):
                raise NonFiniteLossError(f"gradient norm became {norm.item()} at epoch {self.epoch + 1}, "
                                         f"step {steps + 1} (exploding gradients; lr={self.cfg.optim.lr:g}).")
            self.optimizer.step()
            self.scheduler.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
            samples += len(idx)
            if steps % TRIM_EVERY_STEPS == 0:
                release_free_heap()   # the heap fragments step after step: without this the peak grows with the epoch
        out = {("train_loss" if k == "total" else f"loss_{k}"): v / max(steps, 1) for k, v in sums.items()}
        out["_samples"] = samples
        return out

    def _part_inputs(self, batch, out: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(motion parts (n, 5, d), part-text embeddings (n, 5, d), their sentence embeddings (n, 5, S)) of the
        n motions of the batch that have part texts; None when fewer than 2 have them."""
        have = [b for b, p in enumerate(batch.part_texts or ()) if p is not None]
        if len(have) < 2:
            return None
        flat = [text for b in have for text in batch.part_texts[b]]                     # n * 5 texts
        text = text_embeddings(self.model, flat, self.frozen, self.device).float().view(len(have), 5, -1)
        sent = self.sentences.lookup(flat).to(self.device).view(len(have), 5, -1)
        return out["parts"][have].float(), text, sent

    def evaluate(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        text, motion, captions = embed_split(self.model, self.builder, self.eval_idx, self.frozen, self.device,
                                              amp=self.amp)
        corpus = self.shared.corpus
        groups = [corpus.groups[i] for i in self.eval_idx]
        result = evaluate_split(text, motion, captions, groups, self.cfg.runtime)
        # The per-query credit travels with the checkpoint: runs on the same split and evaluation
        # seed can later be compared query by query (paired CIs) without re-encoding anything.
        emb = {"text": text, "motion": motion, "ids": np.asarray([corpus.ids[i] for i in self.eval_idx]),
               "captions": np.asarray(captions), **credits_to_arrays(result.credits)}
        return result.metrics, emb

    def run(self, reporter: Reporter | None) -> list[dict]:
        while self.epoch < self.cfg.optim.epochs:
            t0 = time.perf_counter()
            train_stats = self.train_epoch()
            train_seconds = time.perf_counter() - t0
            metrics, emb = self.evaluate()
            self.epoch += 1
            samples = train_stats.pop("_samples")
            metrics.update(train_stats, epoch=self.epoch, lr=self.optimizer.param_groups[0]["lr"],
                           epoch_seconds=time.perf_counter() - t0,
                           samples_per_second=samples / max(train_seconds, 1e-9), num_params=self.num_params)
            if metrics["recall_at_1"] > self.best + 1e-9:
                self.best, self.bad_epochs = metrics["recall_at_1"], 0
            else:
                self.bad_epochs += 1
            stop = bool(self.cfg.optim.patience and self.bad_epochs >= self.cfg.optim.patience)
            # finished: this run ends after this epoch by its own rule (last epoch or patience), so a searcher
            # can tell a trial that ran to its end from one a scheduler stopped (search/study.py).
            metrics["finished"] = stop or self.epoch >= self.cfg.optim.epochs
            self.history.append(metrics)
            self._report(reporter, metrics, emb)
            release_free_heap()   # the epoch's freed activations: without this the heap only grows
            if stop:
                break
        return self.history

    def _report(self, reporter: Reporter | None, metrics: dict, emb: dict) -> None:
        if reporter is None:
            return
        directory = Path(tempfile.mkdtemp(prefix=f"ckpt-e{self.epoch:03d}-"))
        try:
            save_checkpoint(directory, self.state(), self.flat, emb)
            reporter(dict(metrics), str(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def train_retrieval(config: Mapping[str, Any], reporter: Reporter | None = None, *,
                    shared: SharedInputs | None = None, resume_from: str | Path | None = None) -> list[dict]:
    """Train one configuration; report every epoch; return the per-epoch metric dicts (see module doc)."""
    cfg = TrainConfig.from_flat(config)          # the one validation boundary
    flat = cfg.to_flat()
    release_free_heap()   # a reused Ray worker still holds the previous trial's freed heap
    shared = shared if shared is not None else prepare_shared(flat, progress=False)
    trainer = _Trainer(cfg, flat, shared)
    if resume_from is not None:
        trainer.restore(resume_from)
    return trainer.run(reporter)


__all__ = ["train_retrieval", "prepare_shared", "SharedInputs", "NonFiniteLossError", "Reporter"]

