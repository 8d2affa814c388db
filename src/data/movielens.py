"""MovieLens, the DIN paper's protocol (docs/data.md).

One sample per rating: label 1 for ratings >= `positive_rating` (4: ratings 4 and
5), else 0; the history is the user's earlier rated movies (any rating) in time
order, ties broken by movie id. A movie's category is its first listed genre
("Animation|Children|Comedy" -> "Animation"; "(no genres listed)" is a category
of its own).

Reads ml-latest-small (shipped), ml-latest, ml-20m, ml-25m (`ratings.csv` +
`movies.csv`) and ml-1m (`ratings.dat` + `movies.dat`, "::"-separated, Latin-1).

Side features it can give (declare them in `data.features`, src/data/features.py): a movie's release
`year` (of: item, numeric or categorical; from the title's "(1995)"), and with ml-1m's `users.dat` a
user's `gender`, `age` (its age band) and `occupation` (of: user, categorical).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from src.data import features as side
from src.data.dataset import DataError
from src.data.protocol import Events
from src.data.readers import find_one, locate_bad_line, read_delimited

HOW_TO_GET = (
    "MovieLens comes from https://grouplens.org/datasets/movielens/ : unpack the archive and point "
    "`data.path` at the folder holding ratings.csv and movies.csv (or ratings.dat and movies.dat for ml-1m). "
    "ml-latest-small ships with this project in data/ml-latest-small."
)


def _is_rating(v):
    f = float(v)
    if not 0 <= f <= 5:
        raise ValueError(v)


def _read_dat(path: Path, names, dtypes, checks):
    """A '::'-separated ml-1m file through the C reader ('::' -> tab first)."""
    import pandas as pd

    raw = path.read_bytes().replace(b"::", b"\t")
    try:
        return pd.read_csv(io.BytesIO(raw), sep="\t", header=None, names=names, dtype=dtypes,
                           encoding="latin-1", engine="c", na_filter=False, quoting=3)
    except (ValueError, pd.errors.ParserError):
        locate_bad_line(path, len(names), checks, sep="::", header=False, encoding="latin-1")


ITEM_FEATURES = {"year"}
USER_FEATURES = {"gender", "age", "occupation"}  # ml-1m's users.dat


def files(cfg, folder: Path) -> list[Path]:
    """[ratings, movies] in the folder: the csv pair, or ml-1m's .dat pair; then users.dat when user features
    are declared."""
    ratings = find_one(folder, ["ratings.csv", "ratings.dat"], HOW_TO_GET)
    out = [ratings, find_one(folder, ["movies.dat" if ratings.suffix == ".dat" else "movies.csv"], HOW_TO_GET)]
    wanted = side.declared(cfg)
    unknown = sorted(set(wanted) - ITEM_FEATURES - USER_FEATURES)
    if unknown:
        raise DataError(f"`data.features.{unknown[0]}`: MovieLens gives {', '.join(sorted(ITEM_FEATURES))} (of: item) "
                        f"and, with ml-1m's users.dat, {', '.join(sorted(USER_FEATURES))} (of: user)")
    if set(wanted) & USER_FEATURES:
        users = folder / "users.dat"
        if not users.is_file():
            raise DataError(f"`data.features` names user fields ({', '.join(sorted(set(wanted) & USER_FEATURES))}), "
                            f"which only ml-1m's users.dat holds; no {users}")
        out.append(users)
    return out


def read_files(paths: list[Path]):
    """(ratings DataFrame [user, movie, rating, time], movies DataFrame [movie, title, genres])."""
    ratings_path, movies_path = paths[:2]
    rating_cols = ["user", "movie", "rating", "time"]
    rating_types = {"user": np.int64, "movie": np.int64, "rating": np.float32, "time": np.int64}
    rating_checks = [int, int, _is_rating, int]
    if ratings_path.suffix == ".dat":
        ratings = _read_dat(ratings_path, rating_cols, rating_types, rating_checks)
        movies = _read_dat(movies_path, ["movie", "title", "genres"],
                           {"movie": np.int64, "title": str, "genres": str}, [int, str, str])
    else:
        ratings = next(read_delimited(ratings_path, rating_cols, rating_types, rating_checks))
        movies = next(read_delimited(movies_path, ["movie", "title", "genres"],
                                     {"movie": np.int64, "title": str, "genres": str}, [int, str, str]))
    bad = ~ratings["rating"].between(0, 5)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        line = i + (1 if ratings_path.suffix == ".dat" else 2)
        raise DataError(f"{ratings_path}:{line}: rating {ratings['rating'].iloc[i]} is outside 0..5")
    return ratings, movies


def implicit(cfg) -> bool:
    """Ratings carry their own labels."""
    return False


def load_events(cfg, paths: list[Path], progress=None):
    """Events with explicit labels, and their provenance (`progress` is not called: the files are read whole)."""
    import pandas as pd

    ratings, movies = read_files(paths)
    genre = movies["genres"].str.split("|").str[0].to_numpy(dtype=str)
    genre_names, genre_codes = np.unique(genre, return_inverse=True)
    cat_of_movie = pd.Series(genre_codes, index=movies["movie"].to_numpy())
    cat_of_movie = cat_of_movie[~cat_of_movie.index.duplicated()]
    movie = ratings["movie"].to_numpy()
    cat = cat_of_movie.reindex(movie).to_numpy()
    no_genre_row = np.isnan(cat) if cat.dtype.kind == "f" else np.zeros(len(cat), bool)
    cat = np.where(no_genre_row, len(genre_names), np.nan_to_num(cat)).astype(np.int64)
    threshold = float(cfg.get("positive_rating", 4))
    label = (ratings["rating"].to_numpy() >= threshold).astype(np.float32)
    events = Events(ratings["user"].to_numpy(), movie, cat, ratings["time"].to_numpy(), label,
                    _features(cfg, paths, movies, ratings))
    meta = {"source": "movielens", "ratings": int(len(ratings)),
            "ratings_of_movies_without_genre_row": int(no_genre_row.sum()),
            "category": "first listed genre", "positive_rating": threshold}
    return events, meta


def _features(cfg, paths: list[Path], movies, ratings) -> list:
    """The declared side features' raw values per rating: the movie's year from its title, the user's fields
    from users.dat."""
    import pandas as pd

    out = []
    users = None
    for name, f in side.declared(cfg).items():
        if name not in (ITEM_FEATURES if f["of"] == "item" else USER_FEATURES):
            raise DataError(f"`data.features.{name}` is of: {f['of']}, but MovieLens gives it of: "
                            f"{'item' if name in ITEM_FEATURES else 'user'}")
        if name == "year":
            year = pd.to_numeric(movies["title"].str.strip().str.extract(r"\((\d{4})\)$")[0], errors="coerce")
            values = pd.Series(year.to_numpy(), index=movies["movie"].to_numpy())
        else:
            if users is None:
                users = _read_dat(paths[2], ["user", "gender", "age", "occupation", "zip"],
                                  {"user": np.int64, "gender": str, "age": str, "occupation": str, "zip": str},
                                  [int, str, str, str, str])
            values = pd.Series(users[name].to_numpy(), index=users["user"].to_numpy())
        values = values[~values.index.duplicated()]
        per_event = values.reindex(ratings["movie" if f["of"] == "item" else "user"].to_numpy())
        raw = (per_event.to_numpy(np.float64) if f["kind"] == "numeric"
               else pd.factorize(per_event.astype("string"))[0])
        out.append(side.Raw(name, f["of"], f["kind"], raw))
    return out


def protocol_overrides(cfg) -> dict:
    """Nothing: the config's protocol values apply as they are."""
    return {}
