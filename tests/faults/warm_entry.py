"""A launcher that has imported the entry points' libraries once and forks a fresh child process per command.

The bad-input table runs ~130 commands that each fail in well under a second once Python is up, but a cold start
of ``run_search.py``, ``run_ensemble.py`` or ``python -m core.train`` imports torch, Ray Tune and transformers first
(2-4 s of CPU each, most of the table's time on 2 cores). Each command here still runs in its own process, with
its own cwd, environment (its private RAY_TMPDIR), stdin, stdout and stderr, as ``__main__`` exactly as Python runs
a script or ``-m`` module, and exits with its own status; only the imports are inherited, from a parent that ran
none of our code beyond them (no threads, no torch op, no Ray). What a cold start adds (importing the libraries)
is proven by every test that runs an entry point as a plain subprocess.

Protocol (one JSON object per line): stdin gets ``{"cmd": [PY, script-or-"-m", ...], "cwd", "env", "stdout",
"stderr"}`` (output file paths); stdout answers ``{"returncode": N}`` once the child has exited.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import traceback

# What the table's entry points import on their way to a bad-input check (run_search.py, run_ensemble.py,
# python -m core.data / core.train / results).
WARM_MODULES = ("numpy", "torch", "transformers", "ray", "ray.tune", "optuna", "pyarrow", "search.cli", "search.run",
                "core.train", "core.data", "results.ensemble_cli", "results.ensemble", "results.report")


def run_child(request: dict) -> None:
    """In the forked child: become the command, then exit with its status (never returns)."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, key in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        cmd = request["cmd"][1:]   # [script, args...] or ["-m", module, args...]
        if cmd[0] == "-m":
            sys.argv = [cmd[1], *cmd[2:]]   # runpy puts the module's file name in argv[0], as python -m does
            runpy.run_module(cmd[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(cmd)
            sys.path[0] = os.path.dirname(os.path.abspath(cmd[0]))   # as `python script.py` sets it
            runpy.run_path(cmd[0], run_name="__main__")
        code = 0
    except SystemExit as exc:   # what sys.exit / argparse do; as the interpreter reports it
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> int:
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    if threading.active_count() != 1:   # a fork would copy a lock some thread holds
        print(json.dumps({"error": f"threads after the imports: {threading.enumerate()}"}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


class WarmLauncher:
    """The test side: one launcher process, one command at a time (threads each take their own launcher)."""

    def __init__(self, env: dict[str, str], start_timeout: float = 120) -> None:
        import subprocess

        from tests.faults.procs import PY, REPO

        self.proc = subprocess.Popen([PY, "-m", "tests.faults.warm_entry"], cwd=REPO, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = self._answer(start_timeout)
        if not ready.get("ready"):
            self.close()
            raise RuntimeError(f"the warm launcher did not start: {ready}")

    def _answer(self, timeout: float) -> dict:
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not got or not got[0]:
            self.close()
            raise TimeoutError(f"no answer from the warm launcher within {timeout:.0f} s")
        return json.loads(got[0])

    def run(self, cmd: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str, timeout: float) -> int:
        request = {"cmd": cmd, "cwd": cwd, "env": env, "stdout": stdout, "stderr": stderr}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return int(self._answer(timeout)["returncode"])

    def close(self) -> None:
        from tests.faults.procs import descendants, kill_all

        if self.proc.poll() is None:
            kill_all([*descendants(self.proc.pid), self.proc])
        self.proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
