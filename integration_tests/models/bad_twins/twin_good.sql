-- The real DP twin, as a view: the reference every test must pass.
select * from {{ cps1988_twin_relation() }}
