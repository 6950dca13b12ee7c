"""The motion index against exact ranking on the embedded test split, and run_ensemble.py's --index / --query with
it: every test caption as a query, the ensemble (mean_sim) and each member exactly, Borda / RRF exactly over the
whole split and marked reranked with fewer candidates; numpy and FAISS; bad input as one clear error."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.data import DataError
from core.ensemble import combine, top_candidates
from core.index import faiss_module
from core.inference import encode_split
from core.metrics import similarity_matrix
from results import ensemble_cli
from results.errors import ResultsError
from results.motion_index import INDEX_DIR, build_index, open_index
from results.retrieval import Retriever
from results.retrieval_models import resolve_models

BACKENDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(
    faiss_module() is None, reason="faiss-cpu is not installed (the test extra installs it)"))]


@pytest.fixture(scope="module")
def split(retrieval_experiment):
    """Per member: the test split's caption embeddings (88, d) and motion embeddings (88, d), as evaluation
    encodes them (core.inference.encode_split), and the Retriever that loaded the members."""
    retriever = Retriever(retrieval_experiment.path)
    encoded = [encode_split(retriever.loaded(i), retriever.data(i), "test") for i in range(len(retriever.models.members))]
    return retriever, encoded


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_index_ranks_the_test_split_as_exact_ranking(retrieval_experiment, split, backend):
    retriever, encoded = split
    index = open_index(retriever.models, retrieval_experiment.test_index, backend=backend)
    assert index.ids == encoded[0].ids and index.search.n == len(encoded[0].ids) == 88
    rows = [similarity_matrix(e.text, e.motion) for e in encoded]            # (88, 88) exact, per member
    queries = [e.text for e in encoded]
    use = [index.position[i] for i in range(len(encoded))]
    ensemble = retriever.models.choose()
    assert ensemble.method == "mean_sim" and ensemble.use == (0, 1)
    cases = [(ensemble.method, (0, 1), ensemble.weights, None), (None, (0,), None, None), (None, (1,), None, None),
             ("borda", (0, 1), None, None), ("rrf", (0, 1), (2.0, 1.0), None)]
    for method, members, weights, candidates in cases:
        expected = rows[members[0]] if method is None else combine([rows[m] for m in members], method, weights)
        ids, scores = top_candidates(expected, 10)
        got = index.search.search([queries[m] for m in members], [use[m] for m in members], method, weights, k=10,
                                  candidates=candidates)
        assert got.exact, method
        np.testing.assert_array_equal(got.ids, ids, err_msg=str(method))
        np.testing.assert_allclose(got.scores, scores, rtol=0, atol=1e-9, err_msg=str(method))
    # Fewer candidates than motions: Borda reranks each model's top 40 (measured here: top-1 the same for 87 of
    # 88 queries; bench/retrieval_index.py measures it on 10,000 motions).
    reranked = index.search.search(queries, use, "borda", None, k=10, candidates=40)
    exact_top = top_candidates(combine(rows, "borda"), 10)[0]
    assert not reranked.exact and 40 <= reranked.pooled < 88
    assert (reranked.ids[:, 0] == exact_top[:, 0]).mean() >= 0.95


def test_query_with_an_index_prints_the_same_motions_as_the_split(retrieval_experiment, capsys):
    exp, name = retrieval_experiment.path, retrieval_experiment.test_index
    text = "two people shake hands"
    assert ensemble_cli.main([str(exp), "--query", text, "--top", "4", "--quiet"]) == 0
    exact = capsys.readouterr().out.splitlines()
    for how in (["--index", name], ["--index", retrieval_experiment.data, "--split", "test", "--backend", "numpy"]):
        assert ensemble_cli.main([str(exp), "--query", text, "--top", "4", *how]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert f"index {name}: 88 motions" in lines[0] and "ensemble: mean_sim of" in lines[0] and "; exact;" in lines[0]
        assert [line.split()[:3] for line in lines[2:]] == [line.split()[:3] for line in exact[2:]]  # rank score id
        assert len(lines) == 2 + 4
    member = resolve_models(exp).members[1].member_id
    assert ensemble_cli.main([str(exp), "--query", text, "--index", name, "--model", member, "--top", "2"]) == 0
    assert f"member {member}" in capsys.readouterr().out


def test_building_writes_one_whole_folder_that_names_what_it_holds(retrieval_experiment):
    folder = retrieval_experiment.path / INDEX_DIR / retrieval_experiment.test_index
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "member_0.npy", "member_1.npy", "moments.npz",
                                                        "motions.json"]
    manifest = json.loads((folder / "index.json").read_text())
    assert manifest["library"] | {"content_hash": None} == {
        "data": "synthetic:n=300", "format": None, "split": "test", "name": manifest["library"]["name"], "motions": 88,
        "layout": "interx396", "dim": 396, "fps": 20.0, "content_hash": None}
    assert [m["dim"] for m in manifest["members"]] == [32, 32] and all(len(m["fingerprint"]) == 16
                                                                      for m in manifest["members"])
    assert np.load(folder / "member_0.npy").shape == (88, 32)
    assert not list(folder.parent.glob(".*.lock")) and not list(folder.parent.glob(f".{folder.name}.*"))


def test_bad_input_is_one_clear_error(retrieval_experiment, split, tmp_path, capsys):
    retriever, _ = split
    exp = retrieval_experiment.path
    with pytest.raises(ResultsError, match="the query is empty"):
        retriever.search("  ", retriever.split("test"))
    with pytest.raises(ResultsError, match="split 'holdout' is unknown"):
        retriever.split("holdout")
    with pytest.raises(SystemExit) as stop:
        ensemble_cli.main([str(exp), "--query", "walk", "--split", "holdout"])
    assert stop.value.code == 2 and "invalid choice: 'holdout'" in capsys.readouterr().err
    # Another feature layout: refused before any motion is encoded.
    with pytest.raises(DataError, match=r"--index synthetic:n=40,people=1: its motions have the 'joints22' feature "
                                        r"layout \(137-d\), but the model trains on 'interx396'.*Fix: index a dataset"):
        build_index(retriever.models, "synthetic:n=40,people=1")
    # An index built by other models: here by the first member alone, searched with the ensemble of both.
    checkpoint = retriever.models.members[0].checkpoint
    own = shutil.copytree(checkpoint, tmp_path / "solo")
    built = build_index(resolve_models(own), retrieval_experiment.data, split="test", log=lambda _: None)
    assert ensemble_cli.main([str(exp), "--query", "walk", "--index", str(built.folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "was built by other models" in err and "Fix: build an index" in err
    # ... which the member it was built by may search.
    assert ensemble_cli.main([str(exp), "--query", "walk", "--index", str(built.folder), "--model",
                              retriever.models.members[0].member_id, "--top", "1"]) == 0
    assert ensemble_cli.main([str(exp), "--query", "walk", "--index", "synthetic:n=999"]) == 2
    assert "no index of that name, spec or path; built here: synthetic_n=300-test" in capsys.readouterr().err
