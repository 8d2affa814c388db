"""Any interaction log (`data=events`): CSV or TSV (plain or gzip) or Parquet, one file or a folder of them,
its columns named in the config (docs/your-data.md).

    data.columns.user, .item, .time   required: who, what, when
    data.columns.category             optional: the item's category (else the item table's, else one for all)
    data.columns.label                optional: explicit labels, 0/1, or a rating made 0/1 by data.positive_at;
                                      without it every row is a click and samples get sampled negatives
    data.items.path                   optional item table: data.items.columns.item and .category
    data.users.path                   optional user table: data.users.columns.user
    data.features                     side features read from the log (of: event), the item table (of: item)
                                      or the user table (of: user), each from the column of its name
                                      (src/data/features.py)
    data.time_format                  s or ms (integer Unix time), iso (ISO 8601), auto (the first chunk says)

Users and items may be any strings or integers; they are coded in the order they first appear in the log
(files in name order), so equal timestamps are ordered by the item that appeared first, whatever the
ids look like, and categories by name. With implicit labels `data.protocol` is the Amazon one (din: every
position with history a sample; dien: each user's last positions). The log is read in chunks of
`data.chunk_rows` rows: only the coded integer columns stay in memory.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from src.data import features as side
from src.data.dataset import DataError, filtering_step
from src.data.protocol import Events, paper_overrides
from src.data.readers import item_table_coverage

SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".tsv.gz": "tsv", ".parquet": "parquet", ".pq": "parquet"}
TIME_FORMATS = "integer Unix seconds (time_format=s), integer Unix milliseconds (ms) or ISO 8601 (iso)"
MS_FROM = 10**11  # time_format=auto: integer times from here on are milliseconds (1973 in ms, year 5138 in s)


def _format(path: Path, cfg) -> str:
    fmt = cfg.get("format", "auto")
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise DataError(f"{path}: cannot tell the format from the name (expected one of {', '.join(SUFFIXES)}); "
                    f"set data.format to csv, tsv or parquet")


def _found(path: Path, what: str) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and any(p.name.lower().endswith(s) for s in SUFFIXES))
        if found:
            return found
        raise DataError(f"{path}: the folder holds no {what} file ({', '.join(SUFFIXES)})")
    key = {"log": "path", "item table": "items.path", "user table": "users.path"}[what]
    raise DataError(f"{what} not found: {path} (set data.{key} to a file or a folder of CSV, TSV or Parquet files)")


TABLES = {"items": "item table", "users": "user table"}


def _table_files(cfg, key: str) -> list[Path]:
    from src.config.paths import resolve

    path = (cfg.get(key) or {}).get("path")
    return _found(resolve(path), TABLES[key]) if path else []


def files(cfg, path: Path) -> list[Path]:
    """The log's files (a file, or a folder's files in name order), then the item table's and the user
    table's, if any."""
    return _found(path, "log") + _table_files(cfg, "items") + _table_files(cfg, "users")


FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _unreadable(path: Path, fmt: str, e: Exception) -> DataError:
    """One line naming the file and what is wrong with it, for an error of the library that read it."""
    import pandas as pd

    if isinstance(e, pd.errors.EmptyDataError) or path.stat().st_size == 0:
        return DataError(f"{path}: the file is empty (not even a header line)")
    if isinstance(e, pd.errors.ParserError) and (m := FIELDS.search(str(e))):
        want, line, saw = m.groups()
        return DataError(f"{path}:{line}: line {line} has {saw} fields, the header {want}")
    if isinstance(e, UnicodeDecodeError):
        return DataError(f"{path}: not {e.encoding.upper()} text: byte {e.object[e.start:e.start + 1].hex()} at "
                         f"offset {e.start} of a block ({e.reason}); save the file as UTF-8")
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if fmt == "parquet":
        return DataError(f"{path}: not a readable Parquet file ({reason}): truncated, or not Parquet")
    if isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)):
        return DataError(f"{path}: the compressed file cannot be read ({reason}): truncated or damaged")
    return DataError(f"{path}: cannot be read as {fmt.upper()} ({reason})")


def _read_errors():
    """The exceptions reading a log file can raise that say the file is bad (not the code)."""
    import pandas as pd
    import pyarrow as pa

    return (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, pa.ArrowException, EOFError,
            zlib.error, OSError)


def _columns(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", nrows=0).columns]
    except _read_errors() as e:
        raise _unreadable(path, fmt, e) from None


def _chunks(path: Path, fmt: str, wanted: dict, chunk_rows: int, categorical=()):
    """(where(i) -> "file:line" of the chunk's row i, DataFrame with the wanted columns renamed to their roles);
    the roles in `categorical` are read as strings, as ids are."""
    have = _columns(path, fmt)
    missing = {role: col for role, col in wanted.items() if col not in have}
    if missing:
        said = ", ".join(f"{_setting(role, wanted)}={col!r}" for role, col in missing.items())
        raise DataError(f"{path}: no column {said}; the file's columns are {have}")
    rename = {col: role for role, col in wanted.items()}
    chunks = _parquet_chunks(path, rename, chunk_rows) if fmt == "parquet" else \
        _csv_chunks(path, fmt, wanted, rename, chunk_rows, categorical)
    try:
        yield from chunks
    except _read_errors() as e:  # the file is bad: one line that names it
        raise _unreadable(path, fmt, e) from None


def _parquet_chunks(path: Path, rename: dict, chunk_rows: int):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for g in range(pf.num_row_groups):
        start = 0
        for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=[g], columns=list(rename)):
            df = batch.to_pandas().rename(columns=rename)
            yield (lambda i, g=g, s=start: f"{path}: row group {g}, row {s + i}"), df
            start += len(df)


def _csv_chunks(path: Path, fmt: str, wanted: dict, rename: dict, chunk_rows: int, categorical):
    import pandas as pd

    seen = 0
    # every column is parsed (usecols would drop a line's extra fields without a word), a chunk at a time;
    ids = {col: str for role, col in wanted.items()
           if role in ("user", "item", "category", "item_category", "table_user", "kind") or role in categorical}
    with pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=ids, chunksize=chunk_rows,
                     keep_default_na=False, na_values=[""]) as reader:  # ids as written ("007" is not 7)
        for df in reader:
            df = df[list(rename)].rename(columns=rename)
            yield (lambda i, s=seen: f"{path}:{s + i + 2}"), df  # line 1: the header
            seen += len(df)


def _setting(role: str, wanted: dict) -> str:
    """The config key that names a role's column."""
    if role.startswith("feature:"):
        return f"data.features.{role[len('feature:'):]}.column"
    if role == "item_category":
        return "data.items.columns.category"
    if role == "item" and "item_category" in wanted:
        return "data.items.columns.item"
    if role == "table_user":
        return "data.users.columns.user"
    return f"data.columns.{role}"


def _shown(value) -> str:
    """A value read from a file as a message quotes it: `'yesterday'`, `1300000000.5` (not `np.float64(...)`)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first_bad(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _times(col, where, fmt: str) -> tuple[np.ndarray, str]:
    """Integer times and the format they were read in (auto decides on its first chunk)."""
    import pandas as pd

    if fmt in ("auto", "s", "ms"):
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna().to_numpy() | (num.to_numpy() != np.floor(num.to_numpy()))
        if fmt == "auto" and bad.all():
            fmt = "iso"
        elif bad.any():
            i = _first_bad(bad)
            raise DataError(f"{where(i)}: time {_shown(col.iloc[i])} is not an integer; the times read are "
                            f"{TIME_FORMATS}")
        else:
            t = num.to_numpy().astype(np.int64)
            if fmt == "auto":
                fmt = "ms" if len(t) and t.max() >= MS_FROM else "s"
            return t, fmt
    parsed = pd.to_datetime(col, format="ISO8601", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"{where(i)}: time {_shown(col.iloc[i])} is not ISO 8601; the times read are {TIME_FORMATS}")
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64), "iso"


def _kinds(col, where, kinds: dict) -> np.ndarray:
    """Whether each row is an impression (a sample), from the kind column's values (data.kinds)."""
    values = col.fillna("").astype(str).to_numpy()
    impression = values == str(kinds.get("impression", "impression"))
    bad = ~impression & (values != str(kinds.get("behaviour", "behaviour")))
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"{where(i)}: kind {_shown(values[i])} is neither data.kinds.impression="
                        f"{kinds.get('impression', 'impression')!r} nor data.kinds.behaviour="
                        f"{kinds.get('behaviour', 'behaviour')!r}")
    return impression


def _labels(col, where, positive_at, shown=None) -> np.ndarray:
    """The labels, 0 or 1; with row kinds (`shown`: the impressions) a behaviour's label is not read."""
    import pandas as pd

    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    if shown is not None:
        num = np.where(shown, num, 0.0)
    bad = np.isnan(num)
    if positive_at is None:
        bad |= (num != 0) & (num != 1)
    if bad.any():
        i = _first_bad(bad)
        want = "a number" if positive_at is not None else "0 or 1 (or set data.positive_at to read it as a rating)"
        raise DataError(f"{where(i)}: label {_shown(col.iloc[i])} is not {want}")
    return (num >= positive_at if positive_at is not None else num == 1).astype(np.float32)


class Codes:
    """Codes in the order values first appear, chunk by chunk (a chunk's values are factorized first, so
    the dictionary sees each distinct value once per chunk); a missing value is -1."""

    def __init__(self):
        self.table: dict[str, int] = {}

    def __call__(self, col) -> np.ndarray:
        import pandas as pd

        codes, uniques = pd.factorize(col)
        glob = np.array([self.table.setdefault(str(u), len(self.table)) for u in uniques], dtype=np.int64)
        return np.where(codes >= 0, glob[np.maximum(codes, 0)] if len(glob) else -1, -1)

    def names(self) -> np.ndarray:
        return np.array(list(self.table), dtype=object)


def _numbers(col, where, name: str) -> np.ndarray:
    """A numeric feature's column as floats (empty: NaN); a value that is not a number is refused."""
    import pandas as pd

    num = pd.to_numeric(col, errors="coerce")
    bad = (num.isna() & col.notna()).to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"{where(i)}: feature {name!r} value {_shown(col.iloc[i])} is not a number (kind: numeric)")
    return num.to_numpy(np.float64)


def _features_of(cfg, of: str) -> dict:
    """The enabled features read from the log (of: event), the item table (item) or the user table (user)."""
    return {n: f for n, f in side.declared(cfg).items() if f["of"] == of}


def _feature_roles(feats: dict) -> tuple[dict, list]:
    """(role -> column, the categorical roles) of features."""
    roles = {f"feature:{n}": f["column"] for n, f in feats.items()}
    return roles, [f"feature:{n}" for n, f in feats.items() if f["kind"] == "categorical"]


def _table(cfg, key: str, paths: list[Path], wanted: dict, feats: dict):
    """A side table (`data.items` or `data.users`) as a DataFrame indexed by its key column's values, one row
    per key, with the wanted roles and the features as columns. An id on several rows that agree is one row;
    on rows that differ it is refused, naming the file, the line and the id."""
    import pandas as pd

    roles, categorical = _feature_roles(feats)
    key_role, frames, wheres = next(iter(wanted)), [], []
    for path in paths:
        for where, df in _chunks(path, _format(path, cfg), {**wanted, **roles}, int(cfg.get("chunk_rows", 1_000_000)),
                                 categorical):
            null = df[key_role].isna().to_numpy()
            if null.any():
                raise DataError(f"{where(_first_bad(null))}: no {key_role.removeprefix('table_')} "
                                f"(column {wanted[key_role]!r})")
            for n, f in feats.items():
                if f["kind"] == "numeric":
                    df[f"feature:{n}"] = _numbers(df[f"feature:{n}"], where, n)
            frames.append(df)
            wheres.append(where)
    if not sum(map(len, frames)):
        raise DataError(f"{', '.join(map(str, paths))}: the {TABLES[key]} is empty")
    out = pd.concat(frames, ignore_index=True)
    out[key_role] = out[key_role].astype(str)
    distinct = out.drop_duplicates()  # rows that agree in every column are one
    clash = distinct.duplicated(key_role, keep="first").to_numpy()
    if clash.any():
        at = int(distinct.index[_first_bad(clash)])
        name = distinct[key_role].iloc[_first_bad(clash)]
        first = int(out.index[(out[key_role] == name).to_numpy()][0])
        raise DataError(f"{_located(wheres, frames, at)}: {key.removesuffix('s')} {name!r} is on an earlier row "
                        f"too ({_located(wheres, frames, first)}), with other values; the {TABLES[key]} needs one "
                        f"row per {key.removesuffix('s')} (or rows that agree)")
    return distinct.set_index(key_role)


def _located(wheres: list, frames: list, row: int) -> str:
    """Where the `row`-th row of the chunks read (in order) stands in its file."""
    for where, df in zip(wheres, frames):
        if row < len(df):
            return where(row)
        row -= len(df)
    raise IndexError(row)


def _split_paths(cfg, paths: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """The log's files, the item table's and the user table's (as `files` lists them)."""
    n_items, n_users = len(_table_files(cfg, "items")), len(_table_files(cfg, "users"))
    n_log = len(paths) - n_items - n_users
    return paths[:n_log], paths[n_log:n_log + n_items], paths[n_log + n_items:]


def implicit(cfg) -> bool:
    """Without a label column every row is a click: samples get sampled negatives."""
    return not (cfg.get("columns") or {}).get("label")


def _item_side(cfg, item_paths, items: Codes, cats: Codes, cat_parts: list, item, meta: dict, steps: list):
    """(each event's category code, the item features' raw values per event). The category is the item
    table's, else the log's column, else one category for all; codes follow the categories' names."""
    feats = _features_of(cfg, "item")
    if feats and not item_paths:
        raise DataError(f"`data.features.{next(iter(feats))}` is of: item, which needs an item table "
                        f"(data.items.path)")
    if not item_paths:
        if cat_parts:
            return np.unique(cats.names().astype(str), return_inverse=True)[1][np.concatenate(cat_parts)], []
        return np.zeros(len(item), np.int64), []  # one category for every item
    cols = (cfg.get("items") or {}).get("columns") or {}
    wanted = {"item": cols.get("item", "item"), "item_category": cols.get("category", "category")}
    table = _table(cfg, "items", item_paths, wanted, feats)
    item_names = items.names().astype(str)
    rows = table.reindex(item_names)  # the table's row of each item code (NaN: no row)
    covered = int(np.isin(item_names, table.index).sum())
    meta.update(item_table_coverage(covered, len(item_names), item_paths[0], cfg,
                                     ": is it this log's item table (data.items.path)?"))
    steps.append(filtering_step("items_without_meta", len(item_names) - covered,
                                f"of {len(item_names):,} items have no row in the item table "
                                f"(category 'unknown'; kept)"))
    names = rows["item_category"].fillna("unknown").astype(str).to_numpy()
    return np.unique(names, return_inverse=True)[1][item], _raw(feats, rows, item)


def _raw(feats: dict, rows, key) -> list:
    """The features' raw values per event, from a side table's row of each key code (`rows`) and each
    event's key code."""
    import pandas as pd

    out = []
    for n, f in feats.items():
        col = rows[f"feature:{n}"]
        per_key = pd.factorize(col)[0] if f["kind"] == "categorical" else col.to_numpy(np.float64)
        out.append(side.Raw(n, f["of"], f["kind"], per_key[key]))
    return out


def _user_side(cfg, user_paths, users: Codes, user) -> list:
    """The user features' raw values per event, from the user table."""
    feats = _features_of(cfg, "user")
    if feats and not user_paths:
        raise DataError(f"`data.features.{next(iter(feats))}` is of: user, which needs a user table "
                        f"(data.users.path)")
    if not feats:
        return []
    wanted = {"table_user": ((cfg.get("users") or {}).get("columns") or {}).get("user", "user")}
    table = _table(cfg, "users", user_paths, wanted, feats)
    return _raw(feats, table.reindex(users.names().astype(str)), user)


def _read_log(cfg, log_paths: list[Path], wanted: dict, progress):
    """(parts: role -> list of per-chunk arrays, the Codes of users, items and categories, the event features'
    value readers, rows, the time format read)."""
    feats = _features_of(cfg, "event")
    roles, categorical = _feature_roles(feats)
    positive_at, time_fmt = cfg.get("positive_at"), cfg.get("time_format", "auto")
    codes = {"user": Codes(), "item": Codes(), "category": Codes(), **{n: Codes() for n in feats}}
    parts: dict[str, list] = {k: [] for k in ("user", "item", "cat", "time", "label", "kind", *roles)}
    kinds = (cfg.get("kinds") or {}) if "kind" in wanted else None
    rows = 0
    for path in log_paths:
        for where, df in _chunks(path, _format(path, cfg), {**wanted, **roles}, int(cfg.get("chunk_rows", 1_000_000)),
                                 categorical):
            for role in ("user", "item", "time"):
                null = df[role].isna().to_numpy()
                if null.any():
                    raise DataError(f"{where(_first_bad(null))}: no {role} (column {wanted[role]!r} is empty)")
            parts["user"].append(codes["user"](df["user"]))
            parts["item"].append(codes["item"](df["item"]))
            t, time_fmt = _times(df["time"], where, time_fmt)
            parts["time"].append(t)
            if "category" in wanted:
                parts["cat"].append(codes["category"](df["category"].fillna("unknown")))
            shown = None
            if kinds is not None:
                shown = _kinds(df["kind"], where, kinds)
                parts["kind"].append(shown)
            if "label" in wanted:
                parts["label"].append(_labels(df["label"], where, positive_at, shown))
            for n, f in feats.items():
                col = df[f"feature:{n}"]
                parts[f"feature:{n}"].append(codes[n](col) if f["kind"] == "categorical" else _numbers(col, where, n))
            rows += len(df)
            if progress:
                progress(rows)
    event_raw = [side.Raw(n, "event", f["kind"], np.concatenate(parts[f"feature:{n}"]) if rows else np.zeros(0))
                 for n, f in feats.items()]
    return parts, codes, event_raw, rows, time_fmt


def load_events(cfg, paths: list[Path], progress=None):
    """The log's events, coded, with their provenance; `progress(rows)` after each chunk."""
    columns = cfg.get("columns") or {}
    wanted = {role: columns[role] for role in ("user", "item", "time", "category", "label", "kind")
              if columns.get(role)}
    for role in ("user", "item", "time"):
        if role not in wanted:
            raise DataError(f"`data.columns.{role}` is not set: name the log's {role} column")
    if "kind" in wanted and "label" not in wanted:
        raise DataError("`data.columns.kind` is set but `data.columns.label` is not: a log of impressions and "
                        "behaviours needs each impression's label")
    positive_at = cfg.get("positive_at")
    log_paths, item_paths, user_paths = _split_paths(cfg, paths)
    parts, codes, event_raw, rows, time_fmt = _read_log(cfg, log_paths, wanted, progress)
    if rows == 0:
        raise DataError(f"{', '.join(map(str, log_paths))}: the log is empty (no rows)")
    user, item, time = (np.concatenate(parts[k]) for k in ("user", "item", "time"))
    steps = [filtering_step("rows_read", rows, f"rows read from {len(log_paths)} file(s)")]
    meta = {"source": "events", "rows": rows, "time_format": time_fmt, "protocol": cfg.get("protocol", "din"),
            "files_read": len(log_paths)}
    cat, item_raw = _item_side(cfg, item_paths, codes["item"], codes["category"], parts["cat"], item, meta, steps)
    user_raw = _user_side(cfg, user_paths, codes["user"], user)
    label = None
    kind = np.concatenate(parts["kind"]) if parts["kind"] else None
    if kind is not None and not kind.any():
        raise DataError(f"{', '.join(map(str, log_paths))}: no row is an impression (column {wanted['kind']!r} "
                        f"= {(cfg.get('kinds') or {}).get('impression', 'impression')!r}): nothing to predict")
    if parts["label"]:
        label = np.concatenate(parts["label"])
        shown = label if kind is None else label[kind]
        if shown.min() == shown.max():
            raise DataError(f"{', '.join(map(str, log_paths))}: every label is {int(shown[0])} (column "
                            f"{wanted['label']!r}{f', positive_at={positive_at}' if positive_at is not None else ''}): "
                            f"a click model needs both classes")
    meta["filtering"] = steps
    order = {n: i for i, n in enumerate(side.declared(cfg))}  # the features in the config's order
    feats = sorted(item_raw + user_raw + event_raw, key=lambda f: order[f.name])
    if kind is not None:
        meta["impressions"] = int(kind.sum())
    return Events(user, item, cat, time, label, feats, kind), meta


def protocol_overrides(cfg) -> dict:
    """With implicit labels, the Amazon protocols (din, dien); with explicit ones, the config's values."""
    return paper_overrides(cfg) if implicit(cfg) else {}
