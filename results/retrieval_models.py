"""The models a query can rank with: an experiment's ensemble (its chosen members, fusion and weights) and each of
its members alone, or one checkpoint dir.

    models = resolve_models("experiments/my_search")     # or a trial's checkpoint_* folder
    choice = models.choose("ensemble")                   # or a member id: that model alone
    choice.use (member positions), choice.method (None = one model's cosine), choice.weights

A model is identified by the content of its checkpoint.pt (``fingerprint``): an index records the fingerprints it
was built with, so it is never searched with other models' text embeddings.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.checkpoint import CHECKPOINT_FILE
from core.inference import is_checkpoint_dir
from results.ensemble_report import ENSEMBLE_DIR, MANIFEST_FILE, member_checkpoint, read_manifest
from results.errors import ResultsError

ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class ModelRef:
    member_id: str
    label: str
    checkpoint: Path
    selected: bool           # part of the ensemble
    weight: float            # its weight in the ensemble (0 when not selected)


@dataclass(frozen=True)
class Choice:
    name: str                # "ensemble" or a member id
    label: str               # for people: "ensemble: mean_sim of a, b" / "member a (tmr, seed 0)"
    use: tuple[int, ...]     # positions in ModelSet.members
    method: str | None       # core.ensemble method; None = one model's cosine
    weights: tuple[float, ...]


@dataclass(frozen=True)
class ModelSet:
    target: Path             # the experiment or checkpoint dir
    members: tuple[ModelRef, ...]
    method: str | None       # the ensemble's fusion; None when it is one model (a checkpoint, or the fallback)

    @property
    def is_checkpoint(self) -> bool:
        return len(self.members) == 1 and self.members[0].checkpoint == self.target

    def names(self) -> list[str]:
        return [ENSEMBLE, *(m.member_id for m in self.members)] if not self.is_checkpoint else [ENSEMBLE]

    def choose(self, name: str = ENSEMBLE) -> Choice:
        """The ensemble as built (its selected members, fusion, weights), or one member alone by its id."""
        if name == ENSEMBLE:
            use = tuple(i for i, m in enumerate(self.members) if m.selected)
            ids = ", ".join(self.members[i].member_id for i in use)
            if self.is_checkpoint:
                label = f"checkpoint {self.members[0].member_id}"
            elif self.method is None:
                label = f"ensemble = its best member {ids} (no fusion beat it on val)"
            else:
                label = f"ensemble: {self.method} of {ids}"
            return Choice(ENSEMBLE, label, use, self.method, tuple(self.members[i].weight for i in use))
        for i, m in enumerate(self.members):
            if m.member_id == name:
                label = f"member {name}" + (f" ({m.label})" if m.label != name else "")
                return Choice(name, label, (i,), None, (1.0,))
        raise ResultsError(f"model {name!r} is not one of this {'checkpoint' if self.is_checkpoint else 'experiment'}'s: "
                           f"{', '.join(self.names())}.", where=self.target,
                           fix=f"pass --model {ENSEMBLE} or one of the member ids listed.")


def fingerprint(checkpoint_dir: Path) -> str:
    """sha256 of checkpoint.pt (first 16 hex digits): the same weights, wherever the experiment was copied."""
    digest = hashlib.sha256()
    with open(Path(checkpoint_dir) / CHECKPOINT_FILE, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def resolve_models(target: str | Path) -> ModelSet:
    """A checkpoint dir (one model), or an experiment with a built ensemble: every member still on disk."""
    target = Path(target).expanduser().resolve()
    if is_checkpoint_dir(target):
        return ModelSet(target, (ModelRef(target.name, str(target), target, True, 1.0),), None)
    if not (target / ENSEMBLE_DIR / MANIFEST_FILE).is_file():
        raise ResultsError("neither a checkpoint dir (checkpoint.pt) nor an experiment with an ensemble "
                           f"({ENSEMBLE_DIR}/{MANIFEST_FILE}).", where=target,
                           fix="build the ensemble first (run_ensemble.py EXPERIMENT_DIR --top-k 5) or pass a "
                               "trial's checkpoint_* folder.")
    manifest = read_manifest(target)
    members, missing = [], []
    for n, m in enumerate(manifest["members"], 1):
        path = member_checkpoint(m, manifest, target)
        if not is_checkpoint_dir(path):
            if m["selected"]:
                missing.append(str(path))
            continue   # a member the ensemble does not use: not offered alone
        members.append(ModelRef(str(m.get("member_id") or f"member{n}"), str(m.get("label") or path.parent.name),
                                path, bool(m["selected"]), float(m["weight"])))
    if missing:
        raise ResultsError(f"ensemble member checkpoint(s) no longer on disk: {', '.join(missing)}.",
                           where=target / ENSEMBLE_DIR / MANIFEST_FILE, fix="rebuild: run_ensemble.py EXPERIMENT_DIR.")
    method = None if manifest["method"] == "single" else manifest["method"]
    return ModelSet(target, tuple(members), method)
