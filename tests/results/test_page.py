"""The retrieval page (results/page.py): its JSON and GIFs over HTTP, the page itself in headless Chromium
showing k animated motions with captions, scores and correct-match marks, bad input as one message, a busy port
as one error line, and ``--serve`` stopping cleanly on Ctrl+C."""
from __future__ import annotations

import _thread
import io
import json
import re
import signal
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from PIL import Image

from results import ensemble_cli
from results.page import PageServer
from results.retrieval import Retriever
from tests.search.services import browse, wait_for_http

K = 3


@pytest.fixture(scope="module")
def page(retrieval_experiment, tmp_path_factory):
    """The page on a free loopback port, offering the test split and the index of it."""
    retriever = Retriever(retrieval_experiment.path)
    server = PageServer(retriever, port=0, gif_dir=tmp_path_factory.mktemp("gifs"), k=K)
    test = retriever.split("test")
    server.add(test)
    server.add(retriever.index(retrieval_experiment.test_index))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, test
    server.shutdown()
    thread.join(timeout=10)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_search_answers_json_and_every_hit_is_an_animated_gif(page):
    server, test = page
    truth = test.ids[5]
    for source in ("split:test", "index:synthetic_n=300-test"):
        status, body = _get(server.url + "api/search?" + urllib.parse.urlencode(
            {"q": test.captions[5][0], "source": source, "k": K, "truth": truth}))
        answer = json.loads(body)
        assert status == 200 and answer["exact"] and len(answer["hits"]) == K and answer["truth"] == truth
        assert [h["rank"] for h in answer["hits"]] == [1, 2, 3] and answer["model"].startswith("ensemble: mean_sim")
        assert [h["correct"] for h in answer["hits"]] == [h["id"] == truth for h in answer["hits"]]
        if source == "split:test":
            first = answer["hits"]
        else:   # the index ranks as the split does
            assert [h["id"] for h in answer["hits"]] == [h["id"] for h in first]
    status, gif = _get(server.url + first[0]["gif"].lstrip("/"))
    with Image.open(io.BytesIO(gif)) as image:
        assert status == 200 and image.format == "GIF" and image.n_frames > 10 and image.size == (200, 200)
    for bad, message in ((dict(q=" "), "the query is empty"),
                         (dict(q="walk", source="split:nope"), "source 'split:nope' is unknown"),
                         (dict(q="walk", k="0"), "k='0' is not a number of motions"),
                         (dict(q="walk", model="zzz"), "model 'zzz' is not one of")):
        status, body = _get(server.url + "api/search?" + urllib.parse.urlencode(bad))
        assert status == 400 and message in json.loads(body)["error"]


def test_the_page_in_chromium_shows_k_animated_motions(page, tmp_path):
    server, test = page
    truth = test.ids[5]
    url = server.url + "?" + urllib.parse.urlencode({"q": test.captions[5][0], "source": "split:test", "truth": truth})
    shot = tmp_path / "page.png"
    dom = browse(url, tmp_path, shot)
    figures = re.findall(r'<figure class="hit[^"]*".*?</figure>', dom, re.S)
    assert len(figures) == K, dom[-3000:]
    for n, fig in enumerate(figures, 1):
        assert f'data-rank="{n}"' in fig
        assert re.search(r'<img class="motion"[^>]*src="/gif\?source=split%3Atest&amp;row=\d+"', fig)
        assert 'data-loaded="1"' in fig, fig   # the GIF arrived and decoded
        assert re.search(r'class="score">-?\d+\.\d{4}<', fig) and "<li>" in fig
        assert ("correct match" in fig) == (f'data-motion="{truth}"' in fig)
    assert f"{K} motions of test split" in dom and "exact" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_refuses_a_busy_port_and_stops_cleanly_on_ctrl_c(retrieval_experiment, capsys):
    exp = str(retrieval_experiment.path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        assert ensemble_cli.main([exp, "--serve", "--port", str(busy.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "cannot listen there" in err and "Fix: pass another --port" in err

    def interrupt_when_up() -> None:   # what Ctrl+C does: KeyboardInterrupt in the serving (main) thread
        url = None
        for _ in range(600):
            found = re.search(r"retrieval page: (http://\S+)", capsys.readouterr().out)
            if found:
                url = found.group(1)
                break
            threading.Event().wait(0.1)
        if url:
            wait_for_http(url)
        _thread.interrupt_main()

    # Ctrl+C reaches the server as it reaches a fresh `run_ensemble.py --serve`: through Python's own SIGINT handler.
    # tests/conftest.py restores it after every test; this also covers a fixture that ran Tune before this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_when_up, daemon=True).start()
        assert ensemble_cli.main([exp, "--serve", "--port", "0", "--split", "test"]) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
