"""One small finished experiment with a fused ensemble and an index of its test split, shared by the retrieval
tests (test_retrieval.py, test_page.py): 2 tiny members (TMR, GRU; 1 epoch on the smoke corpus), mean_sim over
both, built once per session (~5 s on 2 cores)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from results.demo_experiment import SMOKE_BASE, SMOKE_DATA, write_demo_experiment

MEMBERS = ({"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1})


@dataclass(frozen=True)
class RetrievalExperiment:
    path: Path              # the experiment, its ensemble = mean_sim of both members
    test_index: str         # name of the index of its test split (every member)
    data: str               # the data spec it trained on


@pytest.fixture(scope="session")
def retrieval_experiment(tmp_path_factory) -> RetrievalExperiment:
    from results.ensemble import build_ensemble
    from results.motion_index import build_index
    from results.retrieval_models import resolve_models

    torch.set_num_threads(1)
    base = {**SMOKE_BASE, "epochs": 1, "hidden_dim": 32, "latent_dim": 32}
    exp = write_demo_experiment(tmp_path_factory.mktemp("retrieval") / "exp", [{**base, **m} for m in MEMBERS])
    build_ensemble(exp, top_k=len(MEMBERS), method="mean_sim", select="all", quiet=True)
    built = build_index(resolve_models(exp), SMOKE_DATA, split="test", log=lambda _: None)
    return RetrievalExperiment(exp, built.folder.name, SMOKE_DATA)
