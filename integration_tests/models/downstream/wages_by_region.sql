-- A model of the kind a project builds on its sources. `dbt build --vars 'synth: true'` runs it
-- (and its tests) on the twin of raw.cps1988 instead of the real table.
select
    region,
    count(*) as workers,
    avg(wage) as mean_weekly_wage,
    avg(case when parttime = 'yes' then 1.0 else 0.0 end) as parttime_share
from {{ source('raw', 'cps1988') }}
group by region
