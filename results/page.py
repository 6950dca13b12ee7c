"""The retrieval page: ``run_ensemble.py EXP --serve`` serves a local web page where a sentence is ranked by the
ensemble (or any member) over a split of the models' data or a built motion index, and the top k motions are shown
animated, with their captions, scores and, for a query picked from the labelled captions, whether each is a correct
match.  Python's standard library only (http.server), one HTML document (results/page_html.py): offline, on CPU.

    server = PageServer(Retriever(EXP), host="127.0.0.1", port=8765, gif_dir=...)   # binds: a busy port fails here
    server.add(retriever.split("test")); server.add(retriever.index("synthetic:n=10000"))
    server.url; server.serve_forever()   # until server.shutdown() (another thread) or Ctrl+C

Routes: ``/`` the page; ``/api/search?q=&source=&model=&k=&truth=`` JSON hits (400 + {"error"} for bad input);
``/api/captions?source=`` the first MAX_CAPTIONS motions' first captions (to pick a labelled query);
``/gif?source=&row=`` a motion as an animated stick figure (results/render.py from core/data/recover.py's joints),
rendered on first request and kept in ``gif_dir`` (written atomically).  A hit is a correct match when it is the
motion whose caption was picked (``truth``), equivalent when it shares that motion's label group or a caption.
"""
from __future__ import annotations

import errno
import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from core.data.recover import features_to_joints
from core.errors import ClearError
from results.errors import ResultsError
from results.page_html import PAGE
from results.render import render_gif
from results.retrieval import Answer, Retriever, Source

MAX_K = 100
MAX_CAPTIONS = 500
GIF_SIZE = 200          # pixels; GIFs are thinned to GIF_FRAMES frames (a 6 s clip plays at 10 fps): ~0.6 s to draw
GIF_FRAMES = 60


class PageServer:
    """The HTTP server of the page; ``add`` the sources it offers (Retriever.split / Retriever.index)."""

    def __init__(self, retriever: Retriever, *, host: str = "127.0.0.1", port: int = 8765, gif_dir: Path,
                 k: int = 10, candidates: int | None = None):
        self.retriever, self.k, self.candidates = retriever, k, candidates
        self.sources: dict[str, Source] = {}     # what the page offers, in order (add)
        self.gif_dir = Path(gif_dir)
        self._draw = threading.Lock()     # matplotlib figures are drawn one at a time
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise ResultsError(f"--host {host} --port {port}: cannot listen there ({e.strerror}).",
                                   fix="pass another --port (--port 0 picks a free one), or stop what uses it.") from None
            raise
        self.httpd.daemon_threads = True
        self._serving = False

    def add(self, source: Source) -> None:
        self.sources[source.key] = source

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        self._serving = True
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop serving (from another thread, or after Ctrl+C ended serve_forever) and close the port."""
        if self._serving:    # http.server's shutdown waits for a serve_forever that was never started otherwise
            self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ what the routes answer

    def config(self) -> dict[str, Any]:
        models = [{"name": n, "label": self.retriever.models.choose(n).label} for n in self.retriever.models.names()]
        return {"sources": [{"key": s.key, "title": s.title, "motions": len(s)} for s in self.sources.values()],
                "models": models, "k": self.k}

    def source(self, key: str) -> Source:
        if key not in self.sources:
            raise ResultsError(f"source {key!r} is unknown.", fix=f"use one of {', '.join(self.sources)}.")
        return self.sources[key]

    def search(self, params: dict[str, str]) -> dict[str, Any]:
        t0 = time.perf_counter()
        source = self.source(params.get("source") or next(iter(self.sources)))
        try:
            k = int(params.get("k") or self.k)
        except ValueError:
            k = 0
        if not 1 <= k <= MAX_K:
            raise ResultsError(f"k={params.get('k')!r} is not a number of motions from 1 to {MAX_K}.", fix="pick another k.")
        answer: Answer = self.retriever.search(params.get("q", ""), source, params.get("model") or "ensemble", k,
                                               self.candidates)
        truth = params.get("truth") or None
        truth_row = source.ids.index(truth) if truth in source.ids else None
        hits = []
        for h in answer.hits:
            correct = truth is not None and h.motion_id == truth
            equivalent = truth_row is not None and not correct and (
                (h.group is not None and h.group == source.groups[truth_row])
                or bool(set(h.captions) & set(source.captions[truth_row])))
            hits.append({"rank": h.rank, "id": h.motion_id, "captions": h.captions, "score": h.score,
                         "correct": correct, "equivalent": equivalent,
                         "gif": "/gif?" + urllib.parse.urlencode({"source": source.key, "row": h.row})})
        return {"query": answer.text, "source": source.key, "source_title": source.title, "model": answer.model,
                "method": answer.method, "exact": answer.exact, "pooled": answer.pooled,
                "candidates": self.candidates, "truth": truth, "encode_ms": answer.encode_ms,
                "search_ms": answer.search_ms, "total_ms": (time.perf_counter() - t0) * 1e3, "hits": hits}

    def captions(self, params: dict[str, str]) -> dict[str, Any]:
        source = self.source(params.get("source", ""))
        return {"captions": [{"id": source.ids[j], "text": source.captions[j][0]}
                             for j in range(min(len(source), MAX_CAPTIONS))]}

    def gif(self, params: dict[str, str]) -> Path:
        """The cached GIF of a source's motion, drawn on first request."""
        source = self.source(params.get("source", ""))
        try:
            row = int(params.get("row", ""))
        except ValueError:
            row = -1
        if not 0 <= row < len(source):
            raise ResultsError(f"row {params.get('row')!r} is not a motion of {source.key} (0..{len(source) - 1}).")
        name = hashlib.sha1(f"{source.key}\0{source.ids[row]}\0{source.title}".encode()).hexdigest()[:20]
        path = self.gif_dir / f"{name}.gif"
        with self._draw:
            if not path.is_file():
                features, layout, fps = self.retriever.motion(source, row)
                joints = features_to_joints(features, layout, fps)   # (T, 22, 3) or (T, 2, 22, 3) world positions
                render_gif(joints, path, fps, size=GIF_SIZE, max_frames=GIF_FRAMES, title=source.ids[row])
        return path


def _handler(server: PageServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:   # requests are not logged to the terminal
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store" if content_type.startswith("application/json") else "max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8")

        def do_GET(self) -> None:   # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            try:
                if url.path == "/":
                    page = PAGE.replace("__CONFIG__", json.dumps(server.config()).replace("</", "<\\/"))
                    self._send(200, page.encode(), "text/html; charset=utf-8")
                elif url.path == "/api/search":
                    self._json(200, server.search(params))
                elif url.path == "/api/captions":
                    self._json(200, server.captions(params))
                elif url.path == "/gif":
                    self._send(200, server.gif(params).read_bytes(), "image/gif")
                else:
                    self._json(404, {"error": f"no page {url.path!r} here; the page is at /."})
            except ClearError as e:   # bad input (a DataError, a ResultsError): its message, never a traceback
                self._json(400, {"error": str(e)})
            except (BrokenPipeError, ConnectionResetError):   # the browser went away
                pass

    return Handler
