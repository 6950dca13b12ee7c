"""core/index.py against core.ensemble over the whole library: the same top k and scores for one model and for
mean_sim (exact through the library's moments), Borda / RRF exact with every candidate, reranked otherwise; both
backends, FAISS forced off, and ties."""
from __future__ import annotations

import numpy as np
import pytest

from core import index as index_module
from core.ensemble import combine, top_candidates
from core.errors import ClearError
from core.index import LibrarySearch, Moments, resolve_backend, top_k_rows
from core.metrics import similarity_matrix

BACKENDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(
    index_module.faiss_module() is None, reason="faiss-cpu is not installed (the test extra installs it)"))]


@pytest.fixture(scope="module")
def library():
    """3 models of different sizes over 1,500 motions (raw embeddings, not unit: off-centre, as a model's are) and
    12 queries each."""
    rng = np.random.default_rng(0)
    dims = (16, 24, 8)
    members = [((rng.normal(size=(1500, d)) + 0.4) * 3).astype(np.float32) for d in dims]
    queries = [rng.normal(size=(12, d)) for d in dims]
    return members, queries


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method,use,weights", [(None, (1,), None), ("mean_sim", (0, 1, 2), (1, 2, 0.5)),
                                                ("mean_sim", (2,), None), ("borda", (0, 1, 2), (1, 2, 0.5)),
                                                ("rrf", (0, 2), None)])
def test_the_whole_library_ranks_as_core_ensemble(library, backend, method, use, weights):
    members, queries = library
    rows = [similarity_matrix(queries[m], members[m]) for m in use]         # (12, 1500) float64 each
    expected = rows[0] if method is None else combine(rows, method, weights)
    ids, scores = top_candidates(expected, 10)
    got = LibrarySearch(members, backend=backend).search([queries[m] for m in use], use, method, weights, k=10)
    assert got.exact and got.pooled == 1500
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_allclose(got.scores, scores, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rerank_is_marked_approximate_and_is_exact_when_the_models_agree(library, backend):
    members, queries = library
    lib = LibrarySearch([members[0], members[0]], backend=backend)     # one model twice: the top C are one set
    got = lib.search([queries[0], queries[0]], (0, 1), "borda", None, k=10, candidates=30)
    assert not got.exact and got.pooled == 30
    expected, _ = top_candidates(combine([similarity_matrix(queries[0], members[0])] * 2, "borda"), 10)
    np.testing.assert_array_equal(got.ids, expected)    # ranks inside every model's top C are the library's
    two = LibrarySearch(members[:2], backend=backend).search(queries[:2], (0, 1), "rrf", None, k=5, candidates=20)
    assert not two.exact and 20 <= two.pooled <= 40 and two.ids.shape == (12, 5)


def test_moments_give_each_query_the_mean_and_std_of_its_cosines(library):
    members, queries = library
    moments = Moments.of(members[1])
    scale, shift = moments.zscore_affine(queries[1] / np.linalg.norm(queries[1], axis=1, keepdims=True))
    sim = similarity_matrix(queries[1], members[1])                         # (12, 1500)
    np.testing.assert_allclose(1 / scale, sim.std(axis=1), rtol=1e-12)
    np.testing.assert_allclose(shift / scale, sim.mean(axis=1), rtol=1e-12)


def test_ties_keep_the_lower_column_as_a_stable_sort():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5], [3.0, 1.0, 2.0, 2.0, 2.0, 0.0]])
    ids, values = top_k_rows(scores, 3)
    np.testing.assert_array_equal(ids, [[1, 3, 0], [0, 2, 3]])
    np.testing.assert_array_equal(values, [[0.9, 0.9, 0.5], [3.0, 2.0, 2.0]])
    np.testing.assert_array_equal(top_k_rows(scores, 10)[0], np.argsort(-scores, axis=1, kind="stable"))


def test_without_faiss_auto_is_numpy_and_asking_for_faiss_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    assert resolve_backend("auto") == "numpy"
    with pytest.raises(ClearError, match=r"'faiss' was asked for, but FAISS is not installed.*pip install faiss-cpu"):
        resolve_backend("faiss")
    with pytest.raises(ClearError, match="backend 'annoy' is unknown"):
        resolve_backend("annoy")
