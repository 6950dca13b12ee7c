"""core/interrupts.py: an interrupt that ran through C code still ends ``python -m`` with exit 130."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# A KeyboardInterrupt raised inside Python code that C code ran through PyRun_* (as pybind11's py::exec does in
# torch), caught by the module, which then exits 130 like our CLIs.
MODULE = '''
import ctypes, sys
ctypes.pythonapi.PyRun_SimpleString(b"raise KeyboardInterrupt")
if sys.argv[1] == "fixed":
    from core.interrupts import exit_130_stays_130
    exit_130_stays_130()
sys.exit(130)
'''


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="a CPython quirk")
def test_a_handled_interrupt_exits_130_not_by_sigint(tmp_path):
    (tmp_path / "interrupted_cli.py").write_text(MODULE)
    env_path = f"{tmp_path}:{REPO}"

    def run(mode: str) -> int:
        return subprocess.run([sys.executable, "-m", "interrupted_cli", mode], cwd=tmp_path, capture_output=True,
                              env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60).returncode

    assert run("plain") == -2      # the quirk: python -m kills itself with SIGINT despite sys.exit(130)
    assert run("fixed") == 130
