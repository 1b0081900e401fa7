-- The DP twin without its 'west' rows: one category of region never appears.
select * from {{ cps1988_twin_relation() }}
where region <> 'west'
