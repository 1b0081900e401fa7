-- One row per movie with how it was rated.
with ratings as (
    select
        movie_id,
        count(*) as ratings,
        avg(stars) as mean_stars
    from {{ ref('stg_ratings') }}
    group by movie_id
)

select
    m.movie_id,
    m.title,
    m.release_year,
    m.genre,
    coalesce(r.ratings, 0) as ratings,
    r.mean_stars
from {{ ref('stg_movies') }} as m
left join ratings as r on r.movie_id = m.movie_id
