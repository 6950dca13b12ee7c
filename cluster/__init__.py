"""Ray cluster configs and a small launcher around them (see cluster/README.md).

    python -m cluster up|submit|down|status CONFIG [--dry-run] [-- run_search.py flags...]

configs/: Ray cluster-launcher YAMLs (aws.yaml, gcp.yaml, onprem.yaml) and a KubeRay RayJob
(kuberay-rayjob.yaml); ``configs.load_config`` checks them with Ray's own launcher validation.
The search itself needs nothing cluster-specific beyond --address and --storage (search/cluster.py).
"""
from .configs import ClusterConfig, ClusterConfigError, load_config

__all__ = ["ClusterConfig", "ClusterConfigError", "load_config"]
