{% test distribution_drift(model, compare_model, columns=none, exclude=[], max_tvd=0.1, max_ks=0.1, max_null_diff=0.05, thresholds={}) %}
  {{ return(adapter.dispatch('test_distribution_drift', 'dbt_synth')(model, compare_model, columns, exclude, max_tvd, max_ks, max_null_diff, thresholds)) }}
{% endtest %}

{% macro default__test_distribution_drift(model, compare_model, columns, exclude, max_tvd, max_ks, max_null_diff, thresholds) %}
{#- Per column, the twin's marginal against the real one, on non-NULL values: total variation
    distance (TVD) for categories and booleans, the Kolmogorov-Smirnov statistic for numbers,
    dates and times; and the difference of NULL rates. A failing row per (column, metric) over
    its threshold. `thresholds` overrides per column: {col: 0.2} (its TVD/KS) or
    {col: {tvd|ks|null_rate: 0.2}}. -#}
{%- set cols = dbt_synth.column_kinds(compare_model, columns, exclude) -%}
{%- set num = dbt_synth.type_double() -%}
with
real_counts as (
    select count(*) as n{% for c in cols %}, count({{ c.quoted }}) as c{{ loop.index }}{% endfor %}
    from {{ compare_model }}
),
twin_counts as (
    select count(*) as n{% for c in cols %}, count({{ c.quoted }}) as c{{ loop.index }}{% endfor %}
    from {{ model }}
),
{%- for c in cols %}
{%- set i = loop.index %}
values_{{ i }} as (
    select v, sum(nr) as nr, sum(nt) as nt
    from (
        select {{ c.quoted }} as v, count(*) as nr, 0 as nt
        from {{ compare_model }} where {{ c.quoted }} is not null group by 1
        union all
        select {{ c.quoted }} as v, 0 as nr, count(*) as nt
        from {{ model }} where {{ c.quoted }} is not null group by 1
    ) as both_sides
    group by v
),
{%- if c.kind in ('numeric', 'temporal') %}
metric_{{ i }} as (
    select coalesce(max(abs(cdf_real - cdf_twin)), 0) as observed
    from (
        select
            cast(sum(nr) over (order by v rows between unbounded preceding and current row) as {{ num }})
              / nullif(sum(nr) over (), 0) as cdf_real,
            cast(sum(nt) over (order by v rows between unbounded preceding and current row) as {{ num }})
              / nullif(sum(nt) over (), 0) as cdf_twin
        from values_{{ i }}
    ) as cdfs
),
{%- else %}
metric_{{ i }} as (
    select coalesce(0.5 * sum(abs(p_real - p_twin)), 0) as observed
    from (
        select
            cast(nr as {{ num }}) / nullif(sum(nr) over (), 0) as p_real,
            cast(nt as {{ num }}) / nullif(sum(nt) over (), 0) as p_twin
        from values_{{ i }}
    ) as shares
),
{%- endif %}
{%- endfor %}
results as (
    select
        cast(null as {{ dbt.type_string() }}) as column_name,
        cast(null as {{ dbt.type_string() }}) as metric,
        cast(null as {{ num }}) as observed,
        cast(null as {{ num }}) as threshold,
        cast(null as {{ dbt.type_string() }}) as detail
    where 1 = 0
{%- for c in cols %}
{%- set i = loop.index %}
{%- set metric = 'ks' if c.kind in ('numeric', 'temporal') else 'tvd' %}
{%- set override = thresholds.get(c.name, {}) %}
{%- set override = override if override is mapping else {metric: override} %}
    union all
    select '{{ c.name }}', '{{ metric }}', observed,
           {{ override.get(metric, max_ks if metric == 'ks' else max_tvd) }},
           '{{ c.kind }} values, NULLs left out'
    from metric_{{ i }}
    union all
    select '{{ c.name }}', 'null_rate',
           abs(cast(r.n - r.c{{ i }} as {{ num }}) / nullif(r.n, 0)
               - cast(t.n - t.c{{ i }} as {{ num }}) / nullif(t.n, 0)),
           {{ override.get('null_rate', max_null_diff) }},
           {#- The real NULL rate is an exact aggregate: only the twin's is shown. #}
           'NULL rate twin ' || {{ dbt_synth.rounded_text('cast(t.n - t.c' ~ i ~ ' as ' ~ num ~ ') / nullif(t.n, 0)', 4) }}
             || ' (real value not shown)'
    from real_counts as r cross join twin_counts as t
{%- endfor %}
)
select column_name, metric, {{ dbt_synth.observed_or_null() }} as observed, threshold, detail
from (select * from results where observed > threshold) as failing
{% endmacro %}
