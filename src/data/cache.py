"""Building a data set once: arrays cached under data/cache/, keyed by config and file contents.

Each array is stored once by its content, so entries that share arrays (the same log with other side
features switched on) share their files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from src.config import to_plain
from src.config.paths import CACHE_DIR, resolve
from src.data import protocol, sources
from src.data.dataset import DataError, SequenceData
from src.data.readers import fingerprint

# bump when the protocol's output changes for the same input, so old caches are not reused
FORMAT_VERSION = 2  # 2: meta['filtering'], what each filtering step kept or dropped
ARRAYS = "arrays"  # the folder of the cache's arrays, each stored once under its content's name


def source_files(cfg) -> list[Path]:
    """The files a data config reads (checked to exist), [] for generated data."""
    module = sources.named(cfg.get("source"))
    if hasattr(module, "build"):  # generated
        return []
    if not cfg.get("path"):
        raise DataError(f"`data.path` is not set for source {cfg.get('source')!r}")
    return module.files(cfg, resolve(cfg["path"]))


def cache_key(cfg, files: list[Path]) -> str:
    plain = {k: v for k, v in to_plain(cfg).items() if k not in ("cache",)}
    h = hashlib.sha256(json.dumps({"cfg": plain, "version": FORMAT_VERSION}, sort_keys=True,
                                  default=str).encode())
    h.update(fingerprint(files).encode())
    return h.hexdigest()[:20]


def build(cfg, files: list[Path], progress=print) -> SequenceData:
    """Parses the sources and applies the protocol (no cache)."""
    cfg = to_plain(cfg)
    source = cfg["source"]
    module = sources.named(source)
    if hasattr(module, "build"):  # generated
        return module.build(cfg)
    t = time.perf_counter()
    progress(f"reading {', '.join(str(f) for f in files)}")
    log, meta = module.load_events(cfg, files, progress=lambda n: progress(f"  {n:,} rows read"))
    cfg = {**cfg, **module.protocol_overrides(cfg)}
    progress(f"  {len(log):,} events in {time.perf_counter() - t:.1f}s; building samples")
    meta["files"] = [str(f) for f in files]
    return protocol.build(log, cfg, str(cfg.get("name", source)), implicit=module.implicit(cfg), meta=meta)


def _digest(a: np.ndarray) -> str:
    """A content address: the same dtype, shape and bytes give the same name."""
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(f"{a.dtype.str}{a.shape}".encode(), digest_size=16)
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _read(manifest: Path) -> SequenceData | None:
    """The data set a manifest names, or None when it or one of its arrays is gone (then it is rebuilt)."""
    try:
        entry = json.loads(manifest.read_text())
        store = manifest.parent / ARRAYS
        arrays = {key: np.load(store / f"{digest}.npy", allow_pickle=False)
                  for key, digest in entry["arrays"].items()}
    except FileNotFoundError:
        return None
    return SequenceData.from_arrays(entry["header"], arrays)


def _write(data: SequenceData, manifest: Path) -> None:
    """Stores each array under its content's name, once for every entry that holds it, then the manifest.

    Every file is written under a temporary name and renamed into place when complete; on a failure the
    arrays this call added are removed, so a failed write leaves nothing behind.
    """
    store = manifest.parent / ARRAYS
    store.mkdir(parents=True, exist_ok=True)
    added: list[Path] = []
    names = {}
    try:
        for key, a in data.arrays().items():
            names[key] = digest = _digest(a)
            path = store / f"{digest}.npy"
            if not path.is_file():
                _atomic(path, lambda f, a=a: np.save(f, np.ascontiguousarray(a), allow_pickle=False))
                added.append(path)
        text = json.dumps({"header": data.header(), "arrays": names}).encode()
        _atomic(manifest, lambda f: f.write(text))
    except BaseException:
        for path in added:
            path.unlink(missing_ok=True)
        raise


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_data(cfg, cache_dir: Path | None = None, progress=print) -> SequenceData:
    """The data set of a data config, from the cache when config and files are unchanged.

    An entry is a small manifest (`<name>-<key>.json`) naming its arrays in `arrays/`, where each array is
    stored once by its content: configurations that differ only in their side features share every array
    but the features' own. A failed build writes nothing.
    """
    cache_dir = Path(cache_dir) if cache_dir else CACHE_DIR
    files = source_files(cfg)
    use_cache = bool(cfg.get("cache", True))
    key = cache_key(cfg, files)
    path = cache_dir / f"{cfg.get('name', cfg.get('source'))}-{key}.json"
    if use_cache and path.is_file():
        data = _read(path)
        if data is not None:
            data.meta["cache"] = {"hit": True, "path": str(path), "key": key}
            return data
    data = build(cfg, files, progress=progress)
    data.meta["fingerprint"] = key
    if use_cache:
        _write(data, path)
    data.meta["cache"] = {"hit": False, "path": str(path) if use_cache else None, "key": key}
    return data
