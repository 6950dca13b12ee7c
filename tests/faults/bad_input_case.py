"""One row of the bad-input table (tests/faults/bad_inputs.py) and the entry points its commands run."""
from __future__ import annotations

import re
from dataclasses import dataclass

from tests.faults.procs import PY, REPO

ENTRY_POINTS = {
    "run_search.py": [PY, str(REPO / "run_search.py")],
    "run_ensemble.py": [PY, str(REPO / "run_ensemble.py")],
    "python -m core.data": [PY, "-m", "core.data"],
    "python -m core.train": [PY, "-m", "core.train"],
    "python -m results": [PY, "-m", "results"],
}
SMOKE = ["--smoke-test", "--no-wandb", "--storage", "{tmp}"]   # run_search flags every search case shares


@dataclass(frozen=True)
class Case:
    id: str
    what: str                # the bad input, in words
    entry: str               # key of ENTRY_POINTS
    argv: tuple[str, ...]
    stderr: str              # regex the (single) error line must match: names the thing and the fix
    exit_code: int = 2

    @property
    def fixtures(self) -> list[str]:
        return sorted(set(re.findall(r"\{(\w+)\}", " ".join(self.argv))) - {"tmp"})
