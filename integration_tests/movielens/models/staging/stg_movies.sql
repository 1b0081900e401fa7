select
    id as movie_id,
    title,
    release_year,
    genre
from {{ ref('raw_movies') }}
