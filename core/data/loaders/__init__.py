"""Loaders for the motion-text formats users have; each returns a ``RawCorpus``.

    raw = load_raw(Path("/data/HumanML3D"), None, {"max_motions": 100})   # format auto-detected
    raw = load_raw(Path("bandai-namco-motiondataset-2.tar.xz"), "bandai", {"extract_dir": cache})

Formats (``LOADERS`` keys; details in each module's docstring):
  humanml3d  new_joint_vecs/*.npy (T, 263) + texts/*.txt + train/val/test.txt       (humanml3d.py)
  kitml      the same layout with (T, 251) KIT-ML features at 12.5 fps               (humanml3d.py)
  tmr        annotations.json + splits/*.txt + a folder of .npy motions              (tmr.py)
  folder     motions/<id>.npy + captions.csv / captions.jsonl (+ splits/, meta.json)  (folder.py)
  joints     joint positions (T, 22, 3) / (T, 2, 22, 3): motions/<id>.npy + captions.csv /
             captions.jsonl, or new_joints/<id>.npy + texts/*.txt -> invariant features (joints.py)
  bvh        **/*.bvh with <name>.json / <name>.txt caption sidecars                 (bvh.py)
  bandai     Bandai-Namco motion dataset: data/*.bvh + data/*.json + cfg/*_label.txt (bandai.py)

An archive (.tar.xz, .tar.gz, .tgz, .tar.bz2, .tar, .zip) is extracted once into
``options["extract_dir"]`` (a cache folder; default ``<default cache>/extracted``) and loaded
from there.  A folder whose data sits one level down (a single sub-folder, as archives usually
have) is found too.  Auto-detection reads at most one .npy header: a HumanML3D root with both
new_joint_vecs/ and new_joints/ is ``humanml3d`` (``--format joints`` reads its joints); a folder
layout whose first motion is (T, 22|21, 3) or (T, P, 22|21, 3) is ``joints``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..spec import check_option
from ..types import RawCorpus
from .bandai import load_bandai
from .bvh import load_bvh_folder
from .folder import load_folder
from .humanml3d import load_humanml3d, load_kitml
from .joints import load_joints
from .tmr import load_tmr

LOADERS: dict[str, Callable[[Path, dict], RawCorpus]] = {
    "humanml3d": load_humanml3d,
    "kitml": load_kitml,
    "tmr": load_tmr,
    "folder": load_folder,
    "joints": load_joints,
    "bvh": load_bvh_folder,
    "bandai": load_bandai,
}

# Every option a loader understands, with what it does (shown when a spec names an unknown one).
OPTION_HELP = {
    "max_motions": "load only the first N motions (sorted / split-file order), for quick tests",
    "extract_dir": "folder where archives are extracted (a cache; set by the caller)",
    "workers": "processes for BVH / joint conversion (default: all CPUs of this process)",
    "fps": "frame rate: of the stored features (humanml3d 20, kitml 12.5, tmr/folder 20), of the stored "
           "joint positions (joints: meta.json or 20), or the target rate BVH is resampled to (20)",
    "target_fps": "joints: frame rate the features are resampled to (default 20, as bvh)",
    "motions_dir": "tmr: folder holding the .npy motions (default <root>/motions)",
    "allow_missing": "tmr: skip keyids whose motion file is absent (count in meta['missing_motions'])",
    "unit": "bvh/bandai/joints: file units 'm' | 'cm' | 'mm' (default: guessed from the skeleton size)",
    "up_axis": "bvh/bandai: up axis 'y' | 'z' | '-z' | ... (default: guessed from the head position); "
               "joints: the same names, default 'y'",
}
_COMMON = ("max_motions", "extract_dir", "workers")
FORMAT_OPTIONS = {
    "humanml3d": _COMMON + ("fps",),
    "kitml": _COMMON + ("fps",),
    "tmr": _COMMON + ("fps", "motions_dir", "allow_missing"),
    "folder": _COMMON + ("fps",),
    "joints": _COMMON + ("fps", "target_fps", "unit", "up_axis"),
    "bvh": _COMMON + ("fps", "unit", "up_axis"),
    "bandai": _COMMON + ("fps", "unit", "up_axis"),
}
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar", ".zip")


def is_archive(path: Path) -> bool:
    return Path(path).is_file() and Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _extract_tar(tf: tarfile.TarFile, dest: Path, path: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuses links out, devices, ..
        tf.extractall(dest, filter="data")
        return
    for member in tf.getmembers():
        if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
            raise DataError(f"archive member {member.name!r} points outside the archive.", where=path)
    tf.extractall(dest)


def extract_archive(path: Path, extract_dir: str | Path | None = None) -> Path:
    """Extract once into ``<extract_dir>/<stem>-<hash of path, size, mtime>``; later calls reuse it.

    The archive is unpacked into a temporary sibling folder that is renamed into place, so an
    interrupted extraction never leaves a half folder that a later run would trust.
    """
    path = Path(path).resolve()
    if extract_dir is None:
        from ..cache import default_cache_dir  # local: only needed without a caller-given folder

        extract_dir = default_cache_dir() / "extracted"
    extract_dir = Path(extract_dir).expanduser()
    extract_dir.mkdir(parents=True, exist_ok=True)
    st = path.stat()
    key = hashlib.blake2b(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode(), digest_size=6).hexdigest()
    final = extract_dir / f"{_archive_stem(path)}-{key}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=extract_dir))
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
                        raise DataError(f"archive member {name!r} points outside the archive.", where=path)
                zf.extractall(tmp)
        else:
            with tarfile.open(path) as tf:
                _extract_tar(tf, tmp, path)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a concurrent extraction that finished first
                raise
    except DataError:
        raise
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, ValueError) as e:
        raise DataError(f"cannot extract the archive ({type(e).__name__}: {e}).", where=path,
                        fix="check the download (it may be truncated), or extract it yourself and pass "
                            "the folder.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _first_npy_shape(folder: Path) -> tuple[int, ...] | None:
    """Shape of the first (sorted) .npy in folder from its header only; None if none or unreadable."""
    first = next(iter(sorted(folder.glob("*.npy"))), None)
    if first is None:
        return None
    try:
        return tuple(np.load(first, mmap_mode="r").shape)
    except (OSError, ValueError, AttributeError):   # unreadable or an .npz: the loader says which
        return None


def _is_joints_shape(shape: tuple[int, ...] | None) -> bool:
    """(T, 22, 3) / (T, P, 22, 3); 21 joints too (KIT-ML), which the joints loader refuses by name."""
    return shape is not None and len(shape) in (3, 4) and shape[-1] == 3 and shape[-2] in (21, 22)


def _detect_here(root: Path) -> str | None:
    if (root / "cfg" / "content_label.txt").is_file() and (root / "data").is_dir():
        return "bandai"
    if (root / "annotations.json").is_file():
        return "tmr"
    vec_dir = root / "new_joint_vecs"
    if vec_dir.is_dir():
        shape = _first_npy_shape(vec_dir)
        return "kitml" if shape is not None and shape[-1] == 251 else "humanml3d"
    if (root / "new_joints").is_dir() and (root / "texts").is_dir():
        return "joints"
    if (root / "motions").is_dir() and ((root / "captions.csv").is_file() or (root / "captions.jsonl").is_file()):
        return "joints" if _is_joints_shape(_first_npy_shape(root / "motions")) else "folder"
    if next(root.rglob("*.bvh"), None) is not None:
        return "bvh"
    return None


# Formats that read the same folder differently: a root detected as one of them is the data
# root for any other (e.g. --format joints on a HumanML3D root that holds new_joints/ too).
_SAME_ROOT = ({"humanml3d", "kitml", "joints"}, {"folder", "joints"})


def _same_root(format: str, detected: str | None) -> bool:
    return detected == format or any({format, detected} <= family for family in _SAME_ROOT)


def _single_subdir(root: Path) -> Path | None:
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    dirs = [p for p in entries if p.is_dir()]
    return dirs[0] if len(dirs) == 1 else None


def _find_root(path: Path) -> tuple[Path, str | None]:
    """(folder holding the data, detected format); looks one single sub-folder deep."""
    fmt = _detect_here(path)
    if fmt is None or fmt == "bvh":
        sub = _single_subdir(path)
        sub_fmt = _detect_here(sub) if sub is not None else None
        if sub_fmt is not None and (fmt is None or sub_fmt != "bvh"):
            return sub, sub_fmt
    return path, fmt


def _materialize(path: Path, options: dict) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("dataset path does not exist.", where=path, fix="check --data.")
    if is_archive(path):
        return extract_archive(path, options.get("extract_dir"))
    if not path.is_dir():
        raise DataError(f"expected a dataset folder or an archive ({', '.join(ARCHIVE_SUFFIXES)}).", where=path)
    return path


def detect_format(path: Path, options: dict | None = None) -> str:
    """The loader name for a folder (or an archive, extracted into options['extract_dir'])."""
    root = _materialize(Path(path), options or {})
    _, fmt = _find_root(root)
    if fmt is None:
        raise DataError(f"cannot tell the dataset format from the folder contents (known formats: "
                        f"{', '.join(LOADERS)}).", where=path,
                        fix="pass --format NAME, or see core/data/loaders/__init__.py for the expected layouts.")
    return fmt


def load_raw(path: Path, format: str | None, options: dict) -> RawCorpus:
    """Load a dataset folder or archive with the named loader (None = auto-detect)."""
    if format is not None and format not in LOADERS:
        raise DataError(f"unknown dataset format {format!r}; known formats: {', '.join(LOADERS)}.",
                        fix="pass one of them with --format, or leave --format out to auto-detect.")
    options = dict(options or {})
    root = _materialize(Path(path), options)
    found_root, detected = _find_root(root)
    if format is None:
        if detected is None:
            raise DataError(f"cannot tell the dataset format from the folder contents (known formats: "
                            f"{', '.join(LOADERS)}).", where=path,
                            fix="pass --format NAME, or see core/data/loaders/__init__.py for the expected layouts.")
        format = detected
    if _same_root(format, detected):
        root = found_root
    unknown = sorted(set(options) - set(FORMAT_OPTIONS[format]))
    if unknown:
        known = "; ".join(f"{k}: {OPTION_HELP[k]}" for k in FORMAT_OPTIONS[format])
        raise DataError(f"unknown option(s) {unknown} for format {format!r}. Known: {known}.", where=path)
    # Type and range of every option, in one place (core/data/spec.py), so the loaders can trust them.
    options = {k: check_option(k, v, where=path) for k, v in options.items()}
    return LOADERS[format](root, options)
