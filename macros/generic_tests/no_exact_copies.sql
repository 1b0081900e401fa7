{% test no_exact_copies(model, compare_model, exclude=[], max_share=0) %}
  {{ return(adapter.dispatch('test_no_exact_copies', 'dbt_synth')(model, compare_model, exclude, max_share)) }}
{% endtest %}

{% macro default__test_no_exact_copies(model, compare_model, exclude, max_share) %}
{#- Share of twin rows equal to some real row on every column but `exclude` (keys, which a twin
    regenerates). Rows are compared by the md5 of their canonical text (dbt_synth.row_text): one
    hash join, no all-pairs comparison. Fails when the share is over `max_share`. -#}
{%- set cols = dbt_synth.column_kinds(compare_model, none, exclude) -%}
{%- set num = 'double precision' -%}
with
real_rows as (
    select distinct md5({{ dbt_synth.row_text(cols) }}) as h from {{ compare_model }}
),
twin_rows as (
    select md5({{ dbt_synth.row_text(cols) }}) as h from {{ model }}
),
matched as (
    select count(*) as twin_rows, count(r.h) as copies
    from twin_rows as t left join real_rows as r on t.h = r.h
)
select
    '{{ cols | map(attribute="name") | join(", ") }}' as column_name,
    'exact_copy_share' as metric,
    cast(copies as {{ num }}) / nullif(twin_rows, 0) as observed,
    {{ max_share }} as threshold,
    cast(copies as {{ dbt.type_string() }}) || ' of ' || cast(twin_rows as {{ dbt.type_string() }})
      || ' twin rows equal a real row' as detail
from matched
where cast(copies as {{ num }}) / nullif(twin_rows, 0) > {{ max_share }}
{% endmacro %}
