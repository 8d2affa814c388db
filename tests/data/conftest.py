import gzip
import json

import pytest


def write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def movielens_dir(tmp_path):
    """Three users; user 1 has a timestamp tie (movies 30 and 20 at t=200); user 3 has one rating."""
    d = tmp_path / "ml"
    d.mkdir()
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n"
          "1,10,4.0,100\n1,30,2.0,200\n1,20,5.0,200\n1,40,3.5,300\n1,10,1.0,400\n1,50,4.5,500\n"
          "2,20,3.0,50\n2,10,4.0,60\n2,60,5.0,70\n2,30,1.0,80\n"
          "3,10,5.0,10\n")
    write(d / "movies.csv", "movieId,title,genres\n"
          '10,"A, the movie (1999)",Comedy|Drama\n20,B (2000),Drama\n30,C (2001),Action|Comedy\n'
          "40,D (2002),(no genres listed)\n50,E (2003),Comedy\n60,F (2004),Drama|Action\n")
    return d


def amazon_lines(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def amazon_rows():
    reviews = []
    for u, items in {"U1": ["a", "b", "c", "d", "e"], "U2": ["b", "c", "f"], "U3": ["a"]}.items():
        for t, asin in enumerate(items):
            reviews.append({"reviewerID": u, "asin": asin, "overall": 5.0, "unixReviewTime": 1000 + 10 * t,
                            "reviewText": "fine"})
    meta = [{"asin": a, "categories": [["Electronics", "Cat " + a.upper()]]} for a in "abcdef"]
    return reviews, meta
