-- One row per user with their rating activity.
with ratings as (
    select
        user_id,
        count(*) as ratings,
        avg(stars) as mean_stars,
        max(rated_at) as last_rated_at
    from {{ ref('stg_ratings') }}
    group by user_id
)

select
    u.user_id,
    u.signed_up_on,
    u.status,
    coalesce(r.ratings, 0) as ratings,
    r.mean_stars,
    r.last_rated_at
from {{ ref('stg_users') }} as u
left join ratings as r on r.user_id = u.user_id
