{% test correlation_drift(model, compare_model, columns=none, exclude=[], method='pearson', max_corr_diff=0.1, max_tvd=0.1, bins=10, top=none) %}
  {{ return(adapter.dispatch('test_correlation_drift', 'dbt_synth')(model, compare_model, columns, exclude, method, max_corr_diff, max_tvd, bins, top)) }}
{% endtest %}

{% macro default__test_correlation_drift(model, compare_model, columns, exclude, method, max_corr_diff, max_tvd, bins, top) %}
{#- Pairwise dependence, twin against real. Numeric pairs: |corr_real - corr_twin| with Pearson
    or Spearman (Pearson on average ranks). Every pair with a category, boolean, date or time:
    TVD between the two 2-way tables of binned codes (dbt_synth.bin_codes, cut points computed
    in this query from the real table, never inlined), all pairs counted in one pass with
    GROUPING SETS. Failing rows, worst first (at most `top`). -#}
{%- if method not in ('pearson', 'spearman') -%}
  {{ exceptions.raise_compiler_error("dbt-synth: correlation_drift method '" ~ method ~ "' is unknown. Fix: use pearson or spearman.") }}
{%- endif -%}
{%- set cols = dbt_synth.column_kinds(compare_model, columns, exclude) -%}
{%- set numeric = cols | selectattr('kind', 'equalto', 'numeric') | list -%}
{%- set binned = dbt_synth.bin_codes(compare_model, cols, bins) -%}
{%- set num = dbt_synth.type_double() -%}
{%- set text = dbt.type_string() -%}
{%- set corr_pairs = [] -%}
{%- set table_pairs = [] -%}
{%- for a in cols -%}
  {%- for b in cols[loop.index:] -%}
    {%- if a.kind == 'numeric' and b.kind == 'numeric' -%}
      {%- do corr_pairs.append((a, b)) -%}
    {%- else -%}
      {%- do table_pairs.append((a, b)) -%}
    {%- endif -%}
  {%- endfor -%}
{%- endfor -%}
{#- The Pearson pairs' aggregates, in parts of at most pairs_per_aggregate() pairs (all in one
    part by default): p1, p2, ... by pair number, one query per part and side. -#}
{%- set per_part = [dbt_synth.pairs_per_aggregate() or corr_pairs | length, 1] | max -%}
{%- set corr_parts = range(1, corr_pairs | length + 1) | batch(per_part) | list -%}
with
{%- if table_pairs %}{{ binned.ctes }}{% endif %}
{%- for side, relation in [('real', compare_model), ('twin', model)] %}
{%- if corr_pairs %}
{{ side }}_values as (
    select
    {%- for c in numeric %}
      {%- if method == 'spearman' %}
        case when {{ c.quoted }} is not null
             then (rank() over (order by {{ c.quoted }}) + count(*) over (order by {{ c.quoted }})) / 2.0
        end as v{{ loop.index }}
      {%- else %}
        cast({{ c.quoted }} as {{ num }}) as v{{ loop.index }}
      {%- endif %}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation }}
),
{%- for part in corr_parts %}
{{ side }}_corr_{{ loop.index }} as (
    select
    {%- for k in part %}
        {%- set a, b = corr_pairs[k - 1] %}
        {%- set va = 'v' ~ (numeric.index(a) + 1) %}
        {%- set vb = 'v' ~ (numeric.index(b) + 1) %}
        {#- A column constant over the pair's rows has no correlation: NULL (DuckDB's corr gives NaN). #}
        case when stddev_samp(case when {{ vb }} is not null then {{ va }} end) > 0
              and stddev_samp(case when {{ va }} is not null then {{ vb }} end) > 0
             then corr({{ va }}, {{ vb }})
        end as p{{ k }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ side }}_values
),
{%- endfor %}
{%- endif %}
{%- if table_pairs %}
{{ side }}_codes as (
    select
    {%- for c in cols %}
        {{ binned.codes[c.name] }} as k{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation }} {{ binned.join }}
),
{{ side }}_cells as (
    select
        {% for c in cols -%}
        case when k{{ loop.index }} is not null then '{{ loop.index }},' else '' end{{ ' ||' if not loop.last }}
        {% endfor -%} as pair_key,
        {% for c in cols -%}
        coalesce(cast(k{{ loop.index }} as {{ text }}), '') {{ "|| '|' ||" if not loop.last }}
        {% endfor -%} as cell,
        count(*) as n
    from {{ side }}_codes
    group by grouping sets (
    {%- for a, b in table_pairs %}
        (k{{ cols.index(a) + 1 }}, k{{ cols.index(b) + 1 }}){{ ',' if not loop.last }}
    {%- endfor %}
    )
),
{%- endif %}
{%- endfor %}
{%- if table_pairs %}
pair_names as (
    {%- for a, b in table_pairs %}
    select '{{ cols.index(a) + 1 }},{{ cols.index(b) + 1 }},' as pair_key,
           '{{ a.name }}, {{ b.name }}' as column_name{{ ' union all' if not loop.last }}
    {%- endfor %}
),
{#- Two samples of one distribution differ too: by about 0.5·Σ sqrt(2/π)·sqrt(p(1-p)(1/n+1/m))
    over the cells (p the pooled share, n and m the two row counts), the TVD that sampling
    alone gives, which is large for small tables (two random halves of a 2,000-row table
    differed by 0.13-0.15 on its 8 x 8 and 10 x 8 tables). A pair fails when its TVD is over
    max_tvd plus that allowance; the allowance is computed from real counts, so it is never shown. #}
table_tvd as (
    select pair_key,
           0.5 * sum(abs(p_real - p_twin)) as observed,
           {{ dbt_synth.sampling_tvd('p_pooled', 'n_real', 'n_twin') }} as allowance
    from (
        select
            pair_key, n_real, n_twin,
            coalesce(cast(real_n as {{ num }}) / n_real, 0) as p_real,
            coalesce(cast(twin_n as {{ num }}) / n_twin, 0) as p_twin,
            cast(coalesce(real_n, 0) + coalesce(twin_n, 0) as {{ num }}) / (n_real + n_twin)
              as p_pooled
        from (
            select
                coalesce(r.pair_key, t.pair_key) as pair_key,
                r.n as real_n,
                t.n as twin_n,
                cast(sum(r.n) over (partition by coalesce(r.pair_key, t.pair_key)) as {{ num }}) as n_real,
                cast(sum(t.n) over (partition by coalesce(r.pair_key, t.pair_key)) as {{ num }}) as n_twin
            from real_cells as r
            full outer join twin_cells as t on r.pair_key = t.pair_key and r.cell = t.cell
        ) as counted
    ) as shares
    group by pair_key
),
{%- endif %}
{%- if corr_pairs %}
{#- One row per numeric pair, both sides' correlations picked by the pair's index out of one
    cross join of the two one-row aggregates (not one union branch per pair: Spark prunes each
    branch's columns and then aggregated both tables once per pair, 90 scans for 45 pairs). #}
corr_pairs as (
    select n.column_name,
           case n.i {% for _ in corr_pairs %}when {{ loop.index }} then r.p{{ loop.index }} {% endfor %}end as p_real,
           case n.i {% for _ in corr_pairs %}when {{ loop.index }} then t.p{{ loop.index }} {% endfor %}end as p_twin
    {%- for side in ['real', 'twin'] %}
    {{ 'from' if loop.first else 'cross join' }} (
        select * from {% for _ in corr_parts %}{{ side }}_corr_{{ loop.index }}{{ ' cross join ' if not loop.last }}{% endfor %}
    ) as {{ side[0] }}
    {%- endfor %}
    cross join (
        {%- for a, b in corr_pairs %}
        select {{ loop.index }} as i, '{{ a.name }}, {{ b.name }}' as column_name{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as n
),
{%- endif %}
results as (
    select
        cast(null as {{ text }}) as column_name,
        cast(null as {{ text }}) as metric,
        cast(null as {{ num }}) as observed,
        cast(null as {{ num }}) as threshold,
        cast(null as {{ text }}) as detail,
        cast(null as {{ num }}) as allowance
    where 1 = 0
{%- if corr_pairs %}
    union all
    select column_name, '{{ method }}_diff',
           abs(coalesce(p_real, 0) - coalesce(p_twin, 0)), {{ max_corr_diff }},
           {#- The real correlation is an exact aggregate: only the twin's is shown. #}
           'twin ' || coalesce({{ dbt_synth.rounded_text("p_twin", 4) }}, 'NULL')
             || ' (real value not shown)',
           0
    from corr_pairs
{%- endif %}
{%- if table_pairs %}
    union all
    select n.column_name, 'tvd_2way', v.observed, {{ max_tvd }},
           'binned 2-way table ({{ bins }} bins); the bar is threshold plus the TVD of sampling alone (real value not shown)',
           v.allowance
    from table_tvd as v join pair_names as n on v.pair_key = n.pair_key
{%- endif %}
),
ranked as (
    select column_name, metric, observed, threshold, detail,
           row_number() over (order by observed - allowance desc) as worst_rank
    from results
    where observed > threshold + allowance
)
select column_name, metric, {{ dbt_synth.observed_or_null() }} as observed, threshold, detail, worst_rank
from ranked
{%- if top %}
where worst_rank <= {{ top }}
{%- endif %}
{% endmacro %}


{% macro pairs_per_aggregate() %}
{#- The most Pearson pairs correlation_drift computes in one aggregate query; none: all. -#}
  {{ return(adapter.dispatch('pairs_per_aggregate', 'dbt_synth')()) }}
{% endmacro %}

{% macro default__pairs_per_aggregate() %}
  {{ return(none) }}
{% endmacro %}

{% macro spark__pairs_per_aggregate() %}
{#- A pair keeps 12 aggregation buffer fields (two stddev_samp, one corr); Spark gives up whole-stage
    code generation for an aggregate over spark.sql.codegen.maxFields (100). 45 pairs in one
    aggregate: 66 s on 1M rows, against 10.6 s in 6 parts of 8 cross joined (local[2], load ~17). -#}
  {{ return(8) }}
{% endmacro %}
