-- Every rating with who gave it and to what.
select
    r.rating_id,
    r.user_id,
    r.movie_id,
    r.stars,
    r.rated_at,
    u.status as user_status,
    m.genre
from {{ ref('stg_ratings') }} as r
inner join {{ ref('stg_users') }} as u on u.user_id = r.user_id
inner join {{ ref('stg_movies') }} as m on m.movie_id = r.movie_id
