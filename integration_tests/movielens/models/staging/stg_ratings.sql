with source as (
    select * from {{ ref('raw_ratings') }}
)

select
    id as rating_id,
    user_id,
    movie_id,
    stars,
    rated_at
from source
