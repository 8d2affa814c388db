"""Every path the project uses, resolved from the project root, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
SWEEPS_DIR = ROOT / "sweeps"
DATA_DIR = ROOT / "data"
CACHE_DIR = DATA_DIR / "cache"
MLRUNS_DIR = ROOT / "mlruns"


def resolve(path: str | Path) -> Path:
    """An absolute path: relative paths are taken from the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p)
