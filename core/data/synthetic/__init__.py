"""``--data synthetic``: a procedural, deterministic, offline text <-> 3D-motion corpus.

    from core.data.synthetic import generate_synthetic
    raw = generate_synthetic(n=2000, people=2, seed=0, fps=20.0)   # -> core.data.types.RawCorpus

Motions are authored as pose channels (``body.py``) and turned into joint rotations and positions
of the 22-joint SMPL/HumanML3D skeleton by forward kinematics (``kinematics.py``).  One person:
sequences of 1-3 of 24 primitives (``primitives.py``, ``locomotion.py``), cross-faded
(``timeline.py``).  Two people: 14 interaction kinds with roles (``interactions.py``), sometimes
followed by one person's solo action.  Captions: ``captions.py``, ``interaction_captions.py``
(grammar helpers in ``grammar.py``).  Corpus assembly and seeding: ``corpus.py``.

Features: one person -> ``core.data.features.joints_to_features`` (D = 137, ``JOINTS22_LAYOUT``);
two people -> ``layout.interaction_features`` (D = 396, ``INTERACTION396_LAYOUT``, documented in
``layout.py`` and reusable for user 396-D data).  ``generate_motion(spec, rng)`` returns the raw
world joints, captions and group of one spec (an ``Action``, a list of Actions, an
``Interaction`` or ``(Interaction, Followup)``), for tests and plots; ``render`` adds rotations.
"""
from .corpus import (GENERATOR_VERSION, SyntheticMotion, generate_motion, generate_synthetic, motion_rng, prepare,
                     render, sample_spec)
from .interactions import Followup, Interaction
from .layout import INTERACTION396_LAYOUT, interaction_features
from .primitives import Action

__all__ = ["generate_synthetic", "generate_motion", "render", "sample_spec", "motion_rng", "prepare", "Action",
           "Interaction", "Followup", "SyntheticMotion", "INTERACTION396_LAYOUT", "interaction_features",
           "GENERATOR_VERSION"]
