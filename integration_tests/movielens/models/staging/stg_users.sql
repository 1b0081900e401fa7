with source as (
    select * from {{ ref('raw_users') }}
),

renamed as (
    select
        id as user_id,
        signed_up_on,
        status
    from source
)

select * from renamed
