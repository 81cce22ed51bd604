"""Where the LivePortrait checkpoints live on this machine, and how they get there.

- ``fetch()`` downloads the five official files (MIT, HF ``KwaiVGI/LivePortrait``, paths
  ``liveportrait/base_models/*.pth`` and ``liveportrait/retargeting_models/*.pth``) with
  ``huggingface_hub`` into the user's cache, with its progress bars and resume. The hub's
  own record of each file (size, LFS sha256) is compared with what arrived.
- ``import_from(DIR)`` copies files a user downloaded by hand (flat, or the official layout).
- Every file is then opened and checked against the network it is for (keys and shapes,
  strictly: the same check as loading), and its size and sha256 are written to
  ``installed.json`` beside the files; ``status()`` compares the files with that record.

The official hashes are not pinned in this project: they could not be read from here (no
access to the hub). The hub's LFS sha256 is checked at download time instead, and the
recorded one from then on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from ...files import sha256_file
from .loader import NETWORKS, WeightsError, find_checkpoint, load_network

REPO_ID = "KwaiVGI/LivePortrait"
RECORD = "installed.json"
ENV_DIR = "AVATAR_VCAM_MODELS"  # overrides the models folder (its liveportrait/ sub-folder)

# network -> path inside the hub repo (= inside the official pretrained_weights/ folder)
REPO_PATHS = {name: f"liveportrait/{sub}/{filename}"
              for name, (filename, sub, _) in NETWORKS.items()}

Downloader = Callable[[str, str, str, Path], Path]


def models_root() -> Path:
    """Folder of all downloaded models: $AVATAR_VCAM_MODELS or the user cache."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else platformdirs.user_cache_path("avatar-vcam") / "models"


def default_dir() -> Path:
    """Where ``fetch`` puts LivePortrait and where the renderer looks for it."""
    return models_root() / "KwaiVGI-LivePortrait"


@dataclass
class FileRecord:
    """One installed checkpoint."""

    network: str
    path: str  # relative to the weights folder
    size: int
    sha256: str
    source: str  # "hf:<repo>@<revision>" or "import:<folder>"
    installed_at: str


def hub_download(repo_id: str, filename: str, revision: str, local_dir: Path) -> Path:
    """One file from the Hugging Face hub into ``local_dir`` (progress bar, resumable)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision,
                                local_dir=local_dir))


def hub_metadata(repo_id: str, revision: str) -> dict[str, tuple[int, str | None]]:
    """Repo path -> (size, LFS sha256) as the hub records them."""
    from huggingface_hub import HfApi

    infos = HfApi().get_paths_info(repo_id, list(REPO_PATHS.values()), revision=revision)
    out = {}
    for info in infos:
        lfs = getattr(info, "lfs", None)
        out[info.path] = (int(info.size), getattr(lfs, "sha256", None) if lfs else None)
    return out


def _check_structure(name: str, path: Path) -> None:
    """Open the file and check it fits the network (raises WeightsError)."""
    load_network(name, path)


def _write_record(dest: Path, records: list[FileRecord]) -> None:
    data = {"format": 1, "repo": REPO_ID, "files": {r.network: asdict(r) for r in records}}
    tmp = dest / (RECORD + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(dest / RECORD)


def _read_record(dest: Path) -> dict[str, dict]:
    """Network -> its entry in ``dest``'s ``installed.json``. A missing, unreadable or
    malformed file counts as no record (the files show as unrecorded), and so does an
    entry without an integer ``size`` and a string ``sha256``."""
    try:
        data = json.loads((dest / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {name: rec for name, rec in files.items()
            if isinstance(rec, dict) and type(rec.get("size")) is int
            and isinstance(rec.get("sha256"), str)}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _record(name: str, dest: Path, path: Path, source: str) -> FileRecord:
    _check_structure(name, path)
    return FileRecord(name, str(path.relative_to(dest)), path.stat().st_size, sha256_file(path),
                      source, _now())


def fetch(dest: Path | None = None, revision: str = "main",
          download: Downloader = hub_download,
          metadata: Callable[[str, str], dict[str, tuple[int, str | None]]] | None = hub_metadata,
          log: Callable[[str], None] = lambda s: None) -> list[FileRecord]:
    """Download the five checkpoints into ``dest`` (default: :func:`default_dir`), verify
    them and record sizes and hashes. Files already complete are not downloaded again."""
    dest = Path(dest) if dest else default_dir()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        meta = metadata(REPO_ID, revision) if metadata else {}
    except Exception as exc:  # offline, proxy, 404: one line with the way around it
        raise WeightsError(_offline_hint(exc, dest)) from exc
    records = []
    for name, repo_path in REPO_PATHS.items():
        log(f"{name}: {repo_path}")
        try:
            path = download(REPO_ID, repo_path, revision, dest)
        except Exception as exc:
            raise WeightsError(_offline_hint(exc, dest)) from exc
        if repo_path in meta:
            size, sha = meta[repo_path]
            if path.stat().st_size != size or (sha and sha256_file(path) != sha):
                path.unlink()
                raise WeightsError(f"LivePortrait weights: {repo_path} arrived damaged "
                                   f"(size or sha256 differs from the hub's); run the fetch "
                                   f"again")
        records.append(_record(name, dest, path, f"hf:{REPO_ID}@{revision}"))
    _write_record(dest, records)
    return records


def _offline_hint(exc: Exception, dest: Path) -> str:
    return (f"cannot download LivePortrait from huggingface.co/{REPO_ID} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}); "
            f"download liveportrait/ from that page by hand and run "
            f"`avatar-vcam models fetch liveportrait --from DIR` (installs into {dest})")


def import_from(src: Path, dest: Path | None = None,
                log: Callable[[str], None] = lambda s: None) -> list[FileRecord]:
    """Copy the five checkpoints from ``src`` (flat, or the official layout) into ``dest``,
    each checked before it is copied; record sizes and hashes."""
    src, dest = Path(src).expanduser(), Path(dest) if dest else default_dir()
    if not src.exists():
        raise WeightsError(f"LivePortrait weights: the folder {src} does not exist; check the "
                           f"path, or run `avatar-vcam models fetch liveportrait` without "
                           f"--from to download them")
    if not src.is_dir():
        raise WeightsError(f"LivePortrait weights: {src} is not a folder; pass the folder "
                           f"that holds the .pth files (or liveportrait/base_models/)")
    found = {name: find_checkpoint(src, name) for name in NETWORKS}  # raises: names the file
    for name, path in found.items():  # every file checked before any is copied
        log(f"{name}: {path}")
        _check_structure(name, path)
    records = []
    for name, path in found.items():
        target = dest / REPO_PATHS[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.resolve() != target.resolve():
            tmp = target.with_suffix(".part")
            shutil.copyfile(path, tmp)
            tmp.replace(target)
        records.append(FileRecord(name, str(target.relative_to(dest)), target.stat().st_size,
                                  sha256_file(target), f"import:{src}", _now()))
    _write_record(dest, records)
    return records


@dataclass
class FileStatus:
    """What ``models list`` shows for one network."""

    network: str
    path: str
    state: str  # "ok", "missing", "changed" (size or sha256 differs), "unrecorded"
    size: int | None = None


def status(dest: Path | None = None, verify: bool = False) -> list[FileStatus]:
    """Each network's file in ``dest`` against ``installed.json`` (sha256 only if verify)."""
    dest = Path(dest) if dest else default_dir()
    record = _read_record(dest)
    out = []
    for name in NETWORKS:
        try:
            path = find_checkpoint(dest, name)
        except WeightsError:
            out.append(FileStatus(name, REPO_PATHS[name], "missing"))
            continue
        size = path.stat().st_size
        rec = record.get(name)
        if rec is None:
            state = "unrecorded"
        elif rec["size"] != size or (verify and sha256_file(path) != rec["sha256"]):
            state = "changed"
        else:
            state = "ok"
        out.append(FileStatus(name, str(path.relative_to(dest)), state, size))
    return out


def installed(dest: Path | None = None) -> bool:
    """True when every checkpoint file is present in ``dest`` (not checked further)."""
    return all(s.state != "missing" for s in status(dest))
