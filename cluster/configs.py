"""Cluster configs: a Ray cluster-launcher YAML (AWS, GCP, on-prem) or a KubeRay RayJob manifest, loaded
and checked the way `ray up` / the KubeRay operator would read them, before anything is started.

    cfg = load_config("cluster/configs/aws.yaml")   # -> ClusterConfig(kind="launcher", ...)
    cfg.edit_markers()                              # lines still holding an `edit-me` value

Launcher YAMLs go through Ray's own preparation and JSON-schema validation
(ray.autoscaler._private.util.prepare_config / validate_config via search/ray_internals.py, what `ray up`
runs first), so a key Ray
2.60 does not know, or a node type without resources, fails here instead of half-way through `ray up`.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
REPO_ROOT = CONFIG_DIR.parents[1]
EDIT_MARKER = "edit-me"     # lowercase: valid inside bucket, image and host names until replaced
LAUNCHER = "launcher"
RAYJOB = "rayjob"
# What every launcher config of ours must state (Ray itself only requires cluster_name and provider).
LAUNCHER_KEYS = ("cluster_name", "provider", "auth", "setup_commands", "head_start_ray_commands",
                 "worker_start_ray_commands")
# The local (on-prem) provider refuses node types: Ray derives a single one from head_ip/worker_ips.
NODE_TYPE_KEYS = ("available_node_types", "head_node_type")
RAYJOB_API_VERSION = "ray.io/v1"


class ClusterConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class ClusterConfig:
    path: Path
    kind: str                    # LAUNCHER or RAYJOB
    data: dict[str, Any]

    @property
    def name(self) -> str:
        if self.kind == RAYJOB:
            return str(self.data["metadata"]["name"])
        return str(self.data["cluster_name"])

    @property
    def uses_token_auth(self) -> bool:
        """Does the cluster start Ray with token authentication (then clients need RAY_AUTH_MODE=token)?"""
        if self.kind == RAYJOB:
            auth = self.data["spec"].get("rayClusterSpec", {}).get("authOptions", {})
            return auth.get("mode", "token") == "token" if auth else False
        return "RAY_AUTH_MODE=token" in " ".join(self.data.get("head_start_ray_commands", []))

    def edit_markers(self) -> list[tuple[int, str]]:
        """(line number, line) of every value still to be replaced by the user."""
        lines = self.path.read_text().splitlines()
        return [(i, line.strip()) for i, line in enumerate(lines, 1)
                if EDIT_MARKER in line.lower() and not line.lstrip().startswith("#")]


def load_config(path: str | Path) -> ClusterConfig:
    path = Path(path).expanduser()
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
        raise ClusterConfigError(f"{path}: no such config file. The shipped ones are in {CONFIG_DIR} "
                                 f"({shipped}); copy one and edit it.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ClusterConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}). Fix: re-save it as "
                                 "UTF-8.") from None
    except yaml.YAMLError as e:
        raise ClusterConfigError(f"{path}: not valid YAML ({e}). Fix the indentation/quoting there.") from None
    if not isinstance(data, dict):
        raise ClusterConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}.")
    if "apiVersion" in data or "kind" in data:
        check_rayjob(data, path)
        return ClusterConfig(path=path.resolve(), kind=RAYJOB, data=data)
    check_launcher(data, path)
    return ClusterConfig(path=path.resolve(), kind=LAUNCHER, data=data)


# ---------------------------------------------------------------- Ray cluster launcher

def check_launcher(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Our required keys, then Ray's own preparation + schema validation. Returns the prepared config."""
    missing = [k for k in LAUNCHER_KEYS if k not in data]
    provider = data.get("provider") if isinstance(data.get("provider"), dict) else {}
    if provider.get("type") != "local":
        missing += [k for k in NODE_TYPE_KEYS if k not in data]
    if missing:
        raise ClusterConfigError(f"{path}: missing {', '.join(missing)}. Every launcher config needs "
                                 f"{', '.join(LAUNCHER_KEYS)} (and, except for provider type local, "
                                 f"{', '.join(NODE_TYPE_KEYS)}).")
    if not provider.get("type"):
        raise ClusterConfigError(f"{path}: provider.type is missing (aws, gcp, local, ...).")
    if data["head_start_ray_commands"] == [] or data["worker_start_ray_commands"] == []:
        raise ClusterConfigError(f"{path}: head_start_ray_commands and worker_start_ray_commands must "
                                 "start Ray (`ray start --head ...` / `ray start --address=$RAY_HEAD_IP:6379`).")
    from search.ray_internals import validate_launcher_config

    try:
        prepared = validate_launcher_config(data)
    except Exception as e:  # jsonschema.ValidationError, ValueError, click's abort: all name the key
        problem = getattr(e, "message", None) or str(e)
        where = "/".join(str(p) for p in getattr(e, "absolute_path", ())) or "the config"
        raise ClusterConfigError(f"{path}: Ray's cluster launcher rejects {where}: {problem}") from None
    return prepared


# ---------------------------------------------------------------- KubeRay RayJob

def _get(data: Any, dotted: str, path: Path) -> Any:
    node = data
    for key in dotted.split("."):
        if isinstance(node, list):
            node = node[int(key)] if key.isdigit() and int(key) < len(node) else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            raise ClusterConfigError(f"{path}: {dotted} is missing (a KubeRay RayJob needs it).")
    return node


def check_rayjob(data: dict[str, Any], path: Path) -> None:
    if data.get("apiVersion") != RAYJOB_API_VERSION or data.get("kind") != "RayJob":
        raise ClusterConfigError(f"{path}: apiVersion {data.get('apiVersion')!r} kind {data.get('kind')!r}: "
                                 f"expected apiVersion {RAYJOB_API_VERSION} and kind RayJob (KubeRay >= 1.0).")
    _get(data, "metadata.name", path)
    entrypoint = _get(data, "spec.entrypoint", path)
    search_args(data, path)  # the entrypoint must run run_search.py
    if "--address" not in entrypoint:
        raise ClusterConfigError(f"{path}: spec.entrypoint must join the RayJob's cluster: add --address auto.")
    runtime_env = data["spec"].get("runtimeEnvYAML")
    if runtime_env is not None:
        try:
            parsed = yaml.safe_load(runtime_env)
        except yaml.YAMLError as e:
            raise ClusterConfigError(f"{path}: spec.runtimeEnvYAML is not valid YAML ({e}).") from None
        if not isinstance(parsed, dict):
            raise ClusterConfigError(f"{path}: spec.runtimeEnvYAML must be a YAML mapping (env_vars: ...).")
    head = _get(data, "spec.rayClusterSpec.headGroupSpec.template.spec.containers.0", path)
    if not head.get("image"):
        raise ClusterConfigError(f"{path}: the head container has no image.")
    groups = _get(data, "spec.rayClusterSpec.workerGroupSpecs", path)
    if not isinstance(groups, list):
        raise ClusterConfigError(f"{path}: spec.rayClusterSpec.workerGroupSpecs must be a list of groups "
                                 f"(`- groupName: ...`), not a {type(groups).__name__}.")
    for i, group in enumerate(groups):
        where = f"spec.rayClusterSpec.workerGroupSpecs.{i}"
        _get(data, f"{where}.groupName", path)
        container = _get(data, f"{where}.template.spec.containers.0", path)
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 0)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (lo, hi)) or not 0 <= lo <= hi:
            raise ClusterConfigError(f"{path}: {where}: minReplicas {lo} / maxReplicas {hi}: need 0 <= min <= max.")
        if not container.get("image"):
            raise ClusterConfigError(f"{path}: {where}: the worker container has no image.")


def search_args(data: dict[str, Any], path: Path) -> list[str]:
    """The run_search.py flags of a RayJob's entrypoint (`python .../run_search.py FLAGS...`)."""
    entrypoint = data["spec"]["entrypoint"]
    if not isinstance(entrypoint, str):
        raise ClusterConfigError(f"{path}: spec.entrypoint must be one command string (KubeRay runs it in a "
                                 f"shell), not a {type(entrypoint).__name__}.")
    try:
        words = shlex.split(entrypoint)
    except ValueError as e:   # "No closing quotation"
        raise ClusterConfigError(f"{path}: spec.entrypoint cannot be split into words ({e}). Fix its "
                                 "quoting.") from None
    for i, word in enumerate(words):
        if word.endswith("run_search.py"):
            return words[i + 1:]
    raise ClusterConfigError(f"{path}: spec.entrypoint does not run run_search.py: "
                             "`python /home/ray/motion-retrieval-search/run_search.py --address auto ...`.")
