{% test cardinality_drift(model, column_name, compare_model, compare_column=none, parents=none, parent_key=none, compare_parents=none, compare_parent_key=none, cap=50, max_tvd=0.1) %}
  {{ return(adapter.dispatch('test_cardinality_drift', 'dbt_synth')(model, column_name, compare_model, compare_column, parents, parent_key, compare_parents, compare_parent_key, cap, max_tvd)) }}
{% endtest %}

{% macro default__test_cardinality_drift(model, column_name, compare_model, compare_column, parents, parent_key, compare_parents, compare_parent_key, cap, max_tvd) %}
{#- How many children each parent has, twin against real: TVD between the two histograms of
    children-per-parent (counts at or over `cap` share one bucket). `column_name` is the child's
    foreign key. Without `parents` only parents that have a child are seen; with `parents` (and
    `compare_parents`) every parent counts, childless ones as 0. -#}
{%- set child_real = compare_column or column_name -%}
{%- set num = dbt_synth.type_double() -%}
{%- set text = dbt.type_string() -%}
{%- if (parents is none) != (compare_parents is none) -%}
  {{ exceptions.raise_compiler_error("dbt-synth: cardinality_drift needs both parents and compare_parents, or neither. Fix: pass the twin parent and the real parent tables.") }}
{%- endif -%}
with
{%- for side, children, fk, parent, pk in [
      ('real', compare_model, child_real, compare_parents, compare_parent_key or parent_key or child_real),
      ('twin', model, column_name, parents, parent_key or column_name)] %}
{{ side }}_per_parent as (
    {%- if parent is not none %}
    select least(count(c.fk), {{ cap }}) as children
    from {{ parent }} as p
    left join (select {{ fk }} as fk from {{ children }}) as c on c.fk = p.{{ pk }}
    group by p.{{ pk }}
    {%- else %}
    select least(count(*), {{ cap }}) as children
    from {{ children }} where {{ fk }} is not null
    group by {{ fk }}
    {%- endif %}
),
{{ side }}_histogram as (
    select children, count(*) as parents from {{ side }}_per_parent group by children
),
{%- endfor %}
shares as (
    select
        coalesce(cast(r.parents as {{ num }}) / nullif(sum(r.parents) over (), 0), 0) as p_real,
        coalesce(cast(t.parents as {{ num }}) / nullif(sum(t.parents) over (), 0), 0) as p_twin
    from real_histogram as r
    full outer join twin_histogram as t on r.children = t.children
),
result as (
    select
        '{{ column_name }}' as column_name,
        'children_per_parent_tvd' as metric,
        0.5 * sum(abs(p_real - p_twin)) as observed,
        {{ max_tvd }} as threshold,
        {#- The real mean is an exact aggregate: only the twin's is shown. #}
        'mean children per parent twin ' || (select {{ dbt_synth.rounded_text("avg(children)", 3) }} from twin_per_parent)
          || ' (real value not shown)' as detail
    from shares
)
select column_name, metric, {{ dbt_synth.observed_or_null() }} as observed, threshold, detail
from (select * from result where observed > threshold) as failing
{% endmacro %}
