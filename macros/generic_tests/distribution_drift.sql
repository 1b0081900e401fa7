{% test distribution_drift(model, compare_model, columns=none, exclude=[], max_tvd=0.1, max_ks=0.1, max_null_diff=0.05, thresholds={}) %}
  {{ return(adapter.dispatch('test_distribution_drift', 'dbt_synth')(model, compare_model, columns, exclude, max_tvd, max_ks, max_null_diff, thresholds)) }}
{% endtest %}

{% macro default__test_distribution_drift(model, compare_model, columns, exclude, max_tvd, max_ks, max_null_diff, thresholds) %}
{#- Per column, the twin's marginal against the real one, on non-NULL values: total variation
    distance (TVD) for categories and booleans, the Kolmogorov-Smirnov statistic for numbers,
    dates and times; and the difference of NULL rates. A failing row per (column, metric) over
    its threshold. `thresholds` overrides per column: {col: 0.2} (its TVD/KS) or
    {col: {tvd|ks|null_rate: 0.2}}. Two samples of one distribution differ too, by about
    0.87·sqrt(1/n + 1/m) (KS) or 0.5·Σ sqrt(2/π)·sqrt(p(1-p)(1/n + 1/m)) (TVD, p the pooled
    share) for n real and m twin values: a column fails over its threshold plus that, which is
    computed from real counts and never shown (small tables: 0.09 KS at 200 rows a side). -#}
{%- set cols = dbt_synth.column_kinds(compare_model, columns, exclude) -%}
{%- set num = dbt_synth.type_double() -%}
{#- Per column: its metric, that metric's threshold and the NULL-rate threshold. -#}
{%- set limits = [] -%}
{%- for c in cols -%}
  {%- set metric = 'ks' if c.kind in ('numeric', 'temporal') else 'tvd' -%}
  {%- set override = thresholds.get(c.name, {}) -%}
  {%- set override = override if override is mapping else {metric: override} -%}
  {%- do limits.append({'metric': metric,
                        'threshold': override.get(metric, max_ks if metric == 'ks' else max_tvd),
                        'null_rate': override.get('null_rate', max_null_diff)}) -%}
{%- endfor -%}
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
    select coalesce(max(abs(cdf_real - cdf_twin)), 0) as observed,
           coalesce({{ dbt_synth.sampling_ks('max(n_real)', 'max(n_twin)') }}, 0) as allowance
    from (
        select
            cast(sum(nr) over (order by v rows between unbounded preceding and current row) as {{ num }})
              / nullif(sum(nr) over (), 0) as cdf_real,
            cast(sum(nt) over (order by v rows between unbounded preceding and current row) as {{ num }})
              / nullif(sum(nt) over (), 0) as cdf_twin,
            nullif(sum(nr) over (), 0) as n_real,
            nullif(sum(nt) over (), 0) as n_twin
        from values_{{ i }}
    ) as cdfs
),
{%- else %}
metric_{{ i }} as (
    select coalesce(0.5 * sum(abs(p_real - p_twin)), 0) as observed,
           coalesce({{ dbt_synth.sampling_tvd('p_pooled', 'n_real', 'n_twin') }}, 0) as allowance
    from (
        select
            cast(nr as {{ num }}) / n_real as p_real,
            cast(nt as {{ num }}) / n_twin as p_twin,
            cast(nr + nt as {{ num }}) / (n_real + n_twin) as p_pooled,
            n_real, n_twin
        from (
            select nr, nt,
                   cast(nullif(sum(nr) over (), 0) as {{ num }}) as n_real,
                   cast(nullif(sum(nt) over (), 0) as {{ num }}) as n_twin
            from values_{{ i }}
        ) as counted
    ) as shares
),
{%- endif %}
{%- endfor %}
{%- if cols %}
{#- One row per column, both sides' NULL rates picked by the column's index out of one cross
    join of the two one-row counts (not one union branch per column: Spark prunes each branch's
    columns and then counted both tables once per column). #}
null_rates as (
    select n.column_name, n.threshold,
           case n.i {% for c in cols %}when {{ loop.index }} then cast(r.n - r.c{{ loop.index }} as {{ num }}) / nullif(r.n, 0) {% endfor %}end as rate_real,
           case n.i {% for c in cols %}when {{ loop.index }} then cast(t.n - t.c{{ loop.index }} as {{ num }}) / nullif(t.n, 0) {% endfor %}end as rate_twin
    from real_counts as r
    cross join twin_counts as t
    cross join (
        {%- for c in cols %}
        select {{ loop.index }} as i, '{{ c.name }}' as column_name, {{ limits[loop.index0].null_rate }} as threshold{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as n
),
{%- endif %}
results as (
    select
        cast(null as {{ dbt.type_string() }}) as column_name,
        cast(null as {{ dbt.type_string() }}) as metric,
        cast(null as {{ num }}) as observed,
        cast(null as {{ num }}) as threshold,
        cast(null as {{ dbt.type_string() }}) as detail,
        cast(null as {{ num }}) as allowance
    where 1 = 0
{%- for c in cols %}
    union all
    select '{{ c.name }}', '{{ limits[loop.index0].metric }}', observed, {{ limits[loop.index0].threshold }},
           '{{ c.kind }} values, NULLs left out; the bar is threshold plus the {{ limits[loop.index0].metric | upper }} of sampling alone (real value not shown)',
           allowance
    from metric_{{ loop.index }}
{%- endfor %}
{%- if cols %}
    union all
    select column_name, 'null_rate', abs(rate_real - rate_twin), threshold,
           {#- The real NULL rate is an exact aggregate: only the twin's is shown. #}
           'NULL rate twin ' || {{ dbt_synth.rounded_text('rate_twin', 4) }} || ' (real value not shown)',
           0
    from null_rates
{%- endif %}
)
select column_name, metric, {{ dbt_synth.observed_or_null() }} as observed, threshold, detail
from (select * from results where observed > threshold + allowance) as failing
{% endmacro %}
