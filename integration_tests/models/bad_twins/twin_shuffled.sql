-- The DP twin with education shuffled across rows: same marginal, broken dependence.
with twin as (
    select *, row_number() over (order by wage, experience, region, ethnicity, smsa, parttime, education) as rn
    from {{ cps1988_twin_relation() }}
),
shuffled as (
    select education, row_number() over (order by md5(cast(rn as {{ dbt.type_string() }}))) as rn
    from twin
)
select t.wage, s.education, t.experience, t.ethnicity, t.smsa, t.region, t.parttime
from twin as t join shuffled as s on t.rn = s.rn
