"""run_ensemble.py's --index, --query and --serve (results/ensemble_cli.py parses and checks the flags):

    run_ensemble.py EXP --index synthetic:n=10000 [--split S]          # build EXP/index/<name>/ (every model)
    run_ensemble.py EXP --query "two people hug" [--index NAME|SPEC|DIR] [--model ID] [--split S]
    run_ensemble.py EXP --serve [--index ...] [--port 8765] [--host 127.0.0.1]   # the page, until Ctrl+C
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from core.data.splits import ALL_MOTIONS
from results.motion_index import INDEX_DIR, INDEX_MANIFEST, build_index
from results.retrieval import Answer, Retriever, Source
from results.retrieval_models import resolve_models

PAGE_SPLITS = ("test", "val")
WARM_UP_QUERY = "a person walks"


def run_build(args: argparse.Namespace) -> int:
    models = resolve_models(args.target)
    split = args.split or ALL_MOTIONS
    built = build_index(models, args.index, args.index_format, split, device=args.device,
                        log=(lambda _: None) if args.quiet else print)
    print(f"indexed {built.motions} motions of {args.index} ({'every motion' if split == ALL_MOTIONS else split + ' split'})"
          f" with {built.members} model(s) in {built.seconds:.1f} s: {built.folder} ({built.bytes / 1e6:.1f} MB)")
    print(f"search it: python run_ensemble.py {models.target} --index {built.folder.name} --query 'two people hug'"
          " (or --serve)")
    return 0


def _source(retriever: Retriever, args: argparse.Namespace) -> Source:
    if args.index is not None:
        return retriever.index(args.index, args.split or ALL_MOTIONS)
    return retriever.split(args.split or "test")


def print_answer(answer: Answer, source: Source) -> None:
    how = "exact" if answer.exact else f"reranked from each model's top candidates ({answer.pooled} motions)"
    print(f"query: {answer.text!r}  ({source.title}; {answer.model}; {how}; search {answer.search_ms:.1f} ms, "
          f"text {answer.encode_ms:.1f} ms)")
    print(f"{'rank':>4}  {'score':>9}  {'motion id':<20} first caption")
    for h in answer.hits:
        print(f"{h.rank:>4}  {h.score:9.4f}  {h.motion_id:<20} {h.captions[0]}")


def run_query(args: argparse.Namespace) -> int:
    retriever = Retriever(args.target, args.device, args.backend)
    retriever.models.choose(args.model)          # an unknown --model is one error before any model loads
    source = _source(retriever, args)
    if source.index is not None:   # built by these models? (before the text model loads)
        source.index.require(retriever.models, retriever.models.choose(args.model).use)
    print_answer(retriever.search(args.query, source, args.model, args.top, args.candidates), source)
    return 0


def gif_folder(target: Path) -> Path:
    """Where the page keeps the GIFs it drew: <target>/index/.page-gifs, or a temp folder when that is read-only."""
    folder = target / INDEX_DIR / ".page-gifs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="retrieval-page-gifs-"))


def page_sources(retriever: Retriever, args: argparse.Namespace) -> list[Source]:
    """--index: that index (and the test / val splits); else the splits and every index built for these models."""
    if args.split is not None and args.index is None:
        splits = (args.split,)
    else:
        splits = PAGE_SPLITS
    sources = [retriever.split(s) for s in splits]
    if args.index is not None:
        return [retriever.index(args.index, args.split or ALL_MOTIONS), *sources]
    root = retriever.models.target / INDEX_DIR
    for folder in sorted(root.glob(f"*/{INDEX_MANIFEST}")) if root.is_dir() else []:
        try:
            source = retriever.index(str(folder.parent))
            source.index.require(retriever.models, retriever.models.choose().use)
            sources.append(source)
        except ValueError as e:   # built by other models, or damaged: the page goes on without it
            print(f"note: leaving out {folder.parent}: {e}")
    return sources


def run_serve(args: argparse.Namespace) -> int:
    from results.page import PageServer

    retriever = Retriever(args.target, args.device, args.backend)
    server = PageServer(retriever, host=args.host, port=args.port, gif_dir=gif_folder(retriever.models.target),
                        k=args.top, candidates=args.candidates)        # binds the port: a busy one fails here
    try:
        for source in page_sources(retriever, args):
            server.add(source)
            retriever.search(WARM_UP_QUERY, source, "ensemble", 1, args.candidates)   # models, text model, splits,
            # and the index's arrays paged in: the page's first query is timed as any other
            print(f"ready: {source.title}")
        print(f"retrieval page: {server.url}  (Ctrl+C stops it)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped the retrieval page.")
    finally:
        server.shutdown()
    return 0
