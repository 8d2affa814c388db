"""Reading source files: plain or gzip, in chunks, with errors that name file and line."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

from src.data.dataset import DataError


def require(path: Path, how_to_get: str) -> Path:
    """The path if it is a file, else a DataError saying where the data comes from."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}\n{how_to_get}")
    return path


def find_one(folder: Path, names: list[str], how_to_get: str) -> Path:
    """The first of `names` present in `folder` (e.g. plain or gzip), else a DataError listing them."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    tried = ", ".join(str(folder / n) for n in names)
    raise DataError(f"data file not found: none of {tried}\n{how_to_get}")


def open_text(path: Path, encoding: str = "utf-8"):
    """A text stream of a plain or gzip file (by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def fingerprint(paths: list[Path]) -> str:
    """SHA-256 over the files' contents (and names), so a changed file changes the cache key."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def locate_bad_line(path: Path, n_fields: int, checks, sep: str = ",", header: bool = True,
                    encoding: str = "utf-8") -> None:
    """Scans a delimited file for the first malformed line and raises a DataError naming it.

    Called only after a fast reader failed, so the slow scan runs only on bad input.

    Args:
        checks: one callable per field that raises on a bad value (e.g. int, float).
    """
    with open_text(path, encoding) as f:
        if len(sep) == 1:
            rows = csv.reader(f, delimiter=sep)
        else:
            rows = (line.rstrip("\r\n").split(sep) for line in f)
        for lineno, row in enumerate(rows, start=1):
            if header and lineno == 1:
                continue
            if not row:
                raise DataError(f"{path}:{lineno}: empty line")
            if len(row) != n_fields:
                raise DataError(f"{path}:{lineno}: expected {n_fields} fields, found {len(row)}: "
                                f"{sep.join(row)[:200]!r}")
            for i, (check, value) in enumerate(zip(checks, row)):
                try:
                    check(value)
                except (TypeError, ValueError):
                    raise DataError(f"{path}:{lineno}: field {i + 1} is not valid: {value!r}") from None
    raise DataError(f"{path}: could not be parsed, but no single malformed line was found")


def read_delimited(path: Path, names: list[str], dtypes: dict, checks: list, sep: str = ",",
                   header: bool = True, encoding: str = "utf-8", usecols=None, chunksize: int | None = None):
    """pandas' C reader with errors translated to file:line; yields DataFrames (chunks).

    Args:
        names: column names (the file's header, if any, is skipped).
        dtypes: column dtypes; a value that does not parse is reported with its line.
        checks: per-field validators for locating a bad line (see locate_bad_line).
        chunksize: rows per chunk, or None for one frame.
    """
    import pandas as pd

    kwargs = dict(sep=sep, header=None, names=names, dtype=dtypes, skiprows=1 if header else 0,
                  encoding=encoding, usecols=usecols, on_bad_lines="error", na_filter=False)
    if len(sep) > 1:
        kwargs["engine"] = "python"
    else:
        kwargs["engine"] = "c"
    try:
        if chunksize is None:
            yield pd.read_csv(path, **kwargs)
        else:
            with pd.read_csv(path, chunksize=chunksize, **kwargs) as reader:
                yield from reader
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OverflowError) as e:
        if isinstance(e, DataError):
            raise
        locate_bad_line(path, len(names), checks, sep=sep, header=header, encoding=encoding)


WARN_META_COVERAGE = 0.9  # an item table covering less than this share of the log's items is worth a warning


def item_table_coverage(covered: int, total: int, table: Path, cfg, hint: str = "",
                        items: str = "items in the log") -> dict:
    """The rule for a table that gives the log's items their categories (Amazon's meta file, an event log's
    item table): refused when it covers fewer than `data.min_meta_coverage` of the items; a warning under
    WARN_META_COVERAGE. Returns what the data set's meta records of it."""
    coverage = covered / total if total else 1.0
    need = float(cfg.get("min_meta_coverage", 0.5))
    share = f"{table} has categories for {covered:,} of the {total:,} {items} ({coverage:.1%})"
    if coverage < need:
        raise DataError(f"{share}, below data.min_meta_coverage={need}{hint}. Items without a category all get "
                        f"one category 'unknown'. Set data.min_meta_coverage=0 to accept it.")
    return {"items_without_meta": int(total - covered), "meta_coverage": round(coverage, 4),
            "warnings": [f"{share}; the rest share the category 'unknown'"] if coverage < WARN_META_COVERAGE else []}
