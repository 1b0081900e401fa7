{% test no_exact_copies(model, compare_model, exclude=[], max_share=0, over_real_duplicates=false) %}
  {{ return(adapter.dispatch('test_no_exact_copies', 'dbt_synth')(model, compare_model, exclude, max_share, over_real_duplicates)) }}
{% endtest %}

{% macro default__test_no_exact_copies(model, compare_model, exclude, max_share, over_real_duplicates) %}
{#- Share of twin rows equal to some real row on every column but `exclude` (keys, which a twin
    regenerates). Rows are compared by the md5 of their canonical text (dbt_synth.row_text): one
    hash join, no all-pairs comparison. Fails when the share is over `max_share`, plus, with
    `over_real_duplicates`, the share of real rows that equal another real row (the rate at
    which rows of this table meet by chance) and three standard errors of the difference of
    the two shares. -#}
{%- set cols = dbt_synth.column_kinds(compare_model, none, exclude) -%}
{%- set num = dbt_synth.type_double() -%}
{%- set text = dbt.type_string() -%}
with
real_counts as (
    select md5({{ dbt_synth.row_text(cols) }}) as h, count(*) as n
    from {{ compare_model }}
    group by 1
),
real_duplicates as (
    select
        coalesce(cast(sum(case when n > 1 then n else 0 end) as {{ num }}) / nullif(sum(n), 0), 0)
          as share,
        sum(n) as real_rows
    from real_counts
),
twin_rows as (
    select md5({{ dbt_synth.row_text(cols) }}) as h from {{ model }}
),
matched as (
    select count(*) as twin_rows, count(r.h) as copies
    from twin_rows as t left join real_counts as r on t.h = r.h
),
judged as (
    select
        matched.*,
        cast(copies as {{ num }}) / nullif(twin_rows, 0) as observed,
        {{ max_share }}
        {%- if over_real_duplicates %}
          {#- The twin's share and the real one are two estimates of the same chance rate: the
              bar allows three standard errors of their difference. #}
          + real_duplicates.share
          + 3 * sqrt(real_duplicates.share * (1 - real_duplicates.share)
                     * (1.0 / nullif(twin_rows, 0) + 1.0 / nullif(real_duplicates.real_rows, 0)))
        {%- endif %} as bar
    from matched cross join real_duplicates
)
{#- The real duplicate share is an exact aggregate of the real table: it moves the bar, and the
    failing row shows `max_share` and says so, never the share itself. -#}
select
    '{{ cols | map(attribute="name") | join(", ") }}' as column_name,
    'exact_copy_share' as metric,
    {{ dbt_synth.observed_or_null() }} as observed,
    {{ max_share }} as threshold,
    {%- if dbt_synth.observed_hidden() %}
    'the count of twin rows equal to a real row is not stored'
    {%- else %}
    cast(copies as {{ text }}) || ' of ' || cast(twin_rows as {{ text }})
      || ' twin rows equal a real row'
    {%- endif %}
      {%- if over_real_duplicates %}
      || '; the bar is threshold plus the share of real rows equal to another real row (real value not shown)'
      {%- endif %} as detail
from judged
where observed > bar
{% endmacro %}
