"""Building a data set once: arrays cached under data/cache/, keyed by config and file contents."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from src.config import to_plain
from src.config.paths import CACHE_DIR, resolve
from src.data import protocol, sources
from src.data.dataset import DataError, SequenceData
from src.data.readers import fingerprint

# bump when the protocol's output changes for the same input, so old caches are not reused
FORMAT_VERSION = 2  # 2: meta['filtering'], what each filtering step kept or dropped
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


def load_data(cfg, cache_dir: Path | None = None, progress=print) -> SequenceData:
    """The data set of a data config, from the cache when config and files are unchanged.

    A failed build writes nothing: the cache file is written under a temporary
    name and renamed into place only when complete.
    """
    cache_dir = Path(cache_dir) if cache_dir else CACHE_DIR
    files = source_files(cfg)
    use_cache = bool(cfg.get("cache", True))
    key = cache_key(cfg, files)
    path = cache_dir / f"{cfg.get('name', cfg.get('source'))}-{key}.npz"
    if use_cache and path.is_file():
        data = SequenceData.load(path)
        data.meta["cache"] = {"hit": True, "path": str(path), "key": key}
        return data
    data = build(cfg, files, progress=progress)
    data.meta["fingerprint"] = key
    if use_cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            data.save(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    data.meta["cache"] = {"hit": False, "path": str(path) if use_cache else None, "key": key}
    return data
