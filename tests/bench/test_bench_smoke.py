"""Every benchmark script runs end to end in its --quick mode (so bench/ cannot rot).

``bench/run_all.py --quick --jobs 2`` (each script as its own process, two at a time, results into a temp folder)
feeds the tests; they check that each JSON has the documented schema and sane numbers, and that SUMMARY.md lists
every row. Experiments and caches go to the test's temp folders, never into bench/results.

The default run covers the scripts that train models, time steps and run one Tune search in-process (P1, P1b, P2, P4,
CI width, diversity, encoders, the retrieval index; ~40 s): their code paths, the process-tree memory sampler (P4)
and the result files. The scripts whose --quick mode is several complete ``run_search.py`` jobs (P3's four arms,
P5's main job and the ensemble read from it, scale's seven searches, the GPU script's fractional search; ~3 min on
2 cores) are ``slow``: ``.ci/run`` runs them after the default run. The searches they drive are the product's own,
which the search and fault tests run in the default run.
``kill_points.py`` is left out here: tests/faults/test_kill_points.py drives its experiments.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW_KEYS = {"benchmark", "goal", "measured", "ratio", "ratio_text", "passed"}
# Result files of each group (encoders' rows are in its own JSON, not checked by the summary test).
DEFAULT_SCRIPTS = ("p1_step_throughput", "p1b_cpu_bf16", "p2_frozen_text", "p4_tune_overhead", "ci_width",
                   "ensemble_diversity", "encoders", "retrieval_index")
SEARCH_SCRIPTS = ("p3_asha_fifo_tpe", "p5_main_job", "scale", "ensemble_vs_member", "gpu")
RESULT_NAMES = tuple(n for n in DEFAULT_SCRIPTS + SEARCH_SCRIPTS if n != "encoders")


def run_all_quick(tmp_path_factory, scripts: tuple[str, ...]) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench-out")
    env = {**os.environ, "MRS_BENCH_WORKDIR": str(tmp_path_factory.mktemp("bench-work"))}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--quick", "--jobs", "2",
                           "--only", *scripts, "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_all_quick(tmp_path_factory, DEFAULT_SCRIPTS)


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    return run_all_quick(tmp_path_factory, SEARCH_SCRIPTS)


def load(out: Path, name: str) -> dict:
    path = out / f"{name}.json"
    assert path.is_file(), f"{name}.json was not written"
    data = json.loads(path.read_text())
    assert data["name"] == name and data["quick"] is True
    assert {"cpu_model", "cores", "torch"} <= set(data["machine"])
    assert len(data["load"]["before"]) == 3 and len(data["load"]["after"]) == 3
    assert data["rows"] and all(ROW_KEYS <= set(r) for r in data["rows"])
    return data


def test_p1_ours_and_bare_loop_train_the_same_batches(quick_run):
    d = load(quick_run[0], "p1_step_throughput")["details"]
    assert len(d["bare_seconds"]) == len(d["ours_seconds"]) == 2
    assert d["samples_per_pass"] == 64 and d["flops_per_pass"] > 0
    assert 0.2 < d["ratio_median_of_pairs"] < 5 and d["matmul"]["best_gflops"] > 0


def test_p1b_trains_both_precisions_or_says_why_not(quick_run):
    from core.precision import cpu_has_native_bf16

    d = load(quick_run[0], "p1b_cpu_bf16")["details"]
    assert d["native_bf16"] is cpu_has_native_bf16()
    if d["native_bf16"]:
        assert len(d["fp32"]) == len(d["bf16"]) == 1 and d["train_speedup"] > 0
        assert all(0 <= h["recall_at_1"] <= 100 for h in d["fp32"] + d["bf16"])


def test_p2_times_both_text_modes(quick_run):
    d = load(quick_run[0], "p2_frozen_text")["details"]["minilm"]
    assert d["trainable_params"]["finetune"] > 5 * d["trainable_params"]["frozen"]   # MiniLM trains
    assert d["frozen_epoch_seconds"] > 0 and d["finetune_epoch_seconds"] > 0 and d["frozen_extraction_seconds"] > 0


def test_p2_distilbert_shaped_folder_loads_as_a_text_model(tmp_path):
    from bench.p2_frozen_text import distilbert_shaped
    from core.text import load_text_transformer

    model, tokenizer = load_text_transformer(distilbert_shaped(tmp_path))
    assert (model.config.dim, model.config.n_layers) == (768, 6)              # DistilBERT-base's shape
    assert sum(p.numel() for p in model.parameters()) > 60_000_000
    assert tokenizer(["a person walks"])["input_ids"][0][0] == 101             # BERT uncased [CLS]


@pytest.mark.slow
def test_p3_measures_epochs_to_fifos_answer_per_arm_and_seed(search_run):
    d = load(search_run[0], "p3_asha_fifo_tpe")["details"]
    arms = d["per_arm"]
    assert {"fifo+tpe", "fifo+random", "asha(rf 2,g 1)+tpe", "hyperband(rf 2)+tpe"} <= set(arms)
    fifo = arms["fifo+tpe"]["0"]
    assert fifo["total_epochs"] == 2 * 2 and fifo["errors"] == 0      # FIFO: every trial trains every epoch
    assert fifo["epochs_to_target"] is not None and fifo["epochs_to_target"] <= 4   # the reference reaches itself
    for arm in arms.values():
        run = arm["0"]
        assert 1 <= run["total_epochs"] <= 4 and run["best_val_r1_ci"][0] <= run["best_val_r1"] <= run["best_val_r1_ci"][1]
    assert Path(d["plot"]).is_file()


def test_p4_tune_ran_exactly_the_loop_configs(quick_run):
    d = load(quick_run[0], "p4_tune_overhead")["details"]
    assert d["tune"]["same_configs"] and d["tune"]["num_trials"] == 2
    assert d["tune_fit_seconds"] > 0 and d["loop_seconds"] > 0


@pytest.mark.slow
def test_p5_measures_wall_and_tree_memory(search_run):
    d = load(search_run[0], "p5_main_job")["details"]
    assert d["trials"] == 2 and d["errored"] == 0
    assert d["peak_processes"] > 3      # driver + Ray's processes + trial workers
    assert d["peak_rss_sum_mib"] > 200
    assert 100 < d["peak_pss_sum_mib"] <= d["peak_rss_sum_mib"]   # PSS splits the shared pages


@pytest.mark.slow
def test_scale_measures_memory_wandb_state_and_the_main_job(search_run):
    d = load(search_run[0], "scale")["details"]
    small, large = d["a"]["runs"]
    assert small["corpus_mib"] < large["corpus_mib"] and small["trial_worker_peak_pss_mib"] > 100
    assert small["driver_peak_pss_mib"] <= small["total_peak_pss_mib"]
    arms = d["b"]["runs"]
    assert arms["no-wandb"][0]["wandb_run_dirs"] == 0 and arms["wandb-offline"][0]["wandb_run_dirs"] >= 2
    assert all(r["logging_actors_seen"] == 0 for runs in arms.values() for r in runs)   # W&B logs in the trials
    state = d["c"]["runs"]
    assert [r["n"] for r in state] == [2, 4] and all(0 < r["state_kb_per_trial"] < 60 for r in state)
    assert d["d"]["run"]["rc"] == 0 and d["d"]["run"]["best_recall_at_1"] is not None


@pytest.mark.slow
def test_ensemble_reads_the_pipelines_study_with_paired_cis(search_run):
    d = load(search_run[0], "ensemble_vs_member")["details"]["embedded seed 0"]
    assert d["source"] == "refit" and len(d["members"]) == 4     # refit: 2 configs x 2 seeds
    value, low, high = d["best_member_test"]["recall_at_1"]
    assert 0 <= low <= value <= high <= 100
    gain = d["chosen_test_gain"]["recall_at_1"]
    assert gain["low"] <= gain["value"] <= gain["high"] and (not d["fallback"] or gain["value"] == 0)


def test_ci_width_reports_paired_half_widths_per_batch_count(quick_run):
    d = load(quick_run[0], "ci_width")["details"]
    pair = d["pairs"]["tmr_seed0 - tmr_seed1"]
    for batches in d["batches"]:
        for n, v in pair[f"recall_at_1 @{batches} batches"].items():
            assert v["low"] <= v["diff"] <= v["high"] and v["half_width"] >= 0


def test_diversity_scores_every_member_group(quick_run):
    d = load(quick_run[0], "ensemble_diversity")["details"]["groups"]
    assert {"seeds", "snapshots", "architectures", "everything"} <= set(d)
    for group in d.values():
        assert set(group["fusions"]) == {"borda", "rrf", "mean_sim"}
        assert -1 <= group["mean_miss_correlation_test"] <= 1


def test_encoders_reports_each_registered_encoder_with_cis_and_epoch_time(quick_run):
    from core.registry import MOTION_ENCODERS

    details = load(quick_run[0], "encoders")["details"]
    pairs = details.pop("paired_pairs")
    d = details
    assert set(d) == {"tmr", "parts", "ssm", "gru"} <= set(MOTION_ENCODERS.names())
    assert "parts - ssm" in pairs and "tmr - parts" not in pairs     # the reference's pairs are paired_vs_tmr
    for encoder, e in d.items():
        r1 = e["test"]["recall_at_1"]
        assert r1["low"] <= r1["value"] <= r1["high"] and e["epoch_seconds_median"] > 0
    assert "paired_vs_tmr" in d["ssm"] and "paired_vs_tmr" not in d["tmr"]


def test_retrieval_index_measures_build_latency_and_rerank_agreement(quick_run):
    d = load(quick_run[0], "retrieval_index")["details"]
    lib = d["libraries"]["120"]
    assert lib["motions"] == 120 and lib["build_s"] > 0 and lib["bytes"] > 120 * 32 * 4 * 3
    assert lib["cli"]["ensemble_numpy"]["exact"] and lib["cli"]["member_numpy"]["search_ms"]["n"] == 5
    assert lib["cli_process"]["printed"].startswith("query: 'two people hug'")
    assert d["page"]["index:synthetic_n=120"]["client_ms"]["median"] > 0
    for table in d["agreement"].values():
        assert all(0 <= a["top1"] <= 1 and a["top10_order_identical"] <= a["top10_overlap"] for a in table.values())
    assert d["million"]["d256"]["vectors"].startswith("random unit vectors") and d["million"]["d256"]["n"] == 2000


@pytest.mark.slow
def test_gpu_script_runs_its_code_path_on_cpu(search_run):
    d = load(search_run[0], "gpu")["details"]
    assert [f["trials_per_gpu"] for f in d["fractional"]] == [2]
    assert all(f["terminated"] == f["num_samples"] for f in d["fractional"])
    assert d["amp"]["steps"] >= 1


def summary_lists_every_row(run: tuple[Path, str], names: tuple[str, ...]) -> None:
    out, _ = run
    summary = (out / "SUMMARY.md").read_text()
    for name in names:
        for r in json.loads((out / f"{name}.json").read_text())["rows"]:
            assert r["benchmark"] in summary


def test_summary_lists_every_row(quick_run):
    summary_lists_every_row(quick_run, tuple(n for n in DEFAULT_SCRIPTS if n in RESULT_NAMES))


@pytest.mark.slow
def test_summary_lists_every_row_of_the_search_scripts(search_run):
    summary_lists_every_row(search_run, SEARCH_SCRIPTS)


def test_gpu_script_without_cuda_exits_cleanly(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the no-GPU message is not shown")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "no CUDA device" in proc.stdout
    assert not list(tmp_path.iterdir())
