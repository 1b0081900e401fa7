{% test schema_matches(model, compare_model) %}
  {{ return(adapter.dispatch('test_schema_matches', 'dbt_synth')(model, compare_model)) }}
{% endtest %}

{% macro default__test_schema_matches(model, compare_model) %}
{#- One failing row per difference between the twin's columns and the source's, read from the
    warehouse's own information_schema: a column missing or extra, at another position, or of
    another type. Types are compared as the warehouse spells them (with length / precision where
    the warehouse reports them apart), so a twin must match the source exactly. -#}
{%- set text = dbt.type_string() -%}
with expected as (
    {{ dbt_synth._catalog_columns(compare_model) }}
),
observed as (
    {{ dbt_synth._catalog_columns(model) }}
),
paired as (
    select
        coalesce(e.column_name, o.column_name) as column_name,
        e.position as expected_position,
        o.position as observed_position,
        e.column_type as expected_type,
        o.column_type as observed_type
    from expected as e
    full outer join observed as o on e.column_name = o.column_name
),
failures as (
    select column_name, 'missing' as metric,
           cast(expected_position as {{ text }}) || ': ' || expected_type as expected,
           cast(null as {{ text }}) as observed
    from paired where observed_position is null
    union all
    select column_name, 'unexpected',
           cast(null as {{ text }}),
           cast(observed_position as {{ text }}) || ': ' || observed_type
    from paired where expected_position is null
    union all
    select column_name, 'position',
           cast(expected_position as {{ text }}),
           cast(observed_position as {{ text }})
    from paired where expected_position <> observed_position
    union all
    select column_name, 'type', expected_type, observed_type
    from paired where expected_type <> observed_type
)
select column_name, metric, expected, observed from failures
{% endmacro %}

{% macro _catalog_columns(relation) %}
  {{ return(adapter.dispatch('_catalog_columns', 'dbt_synth')(relation)) }}
{% endmacro %}

{% macro default___catalog_columns(relation) %}
{#- Columns of `relation` with 1-based ordinal position and full type text. An empty result means
    the relation does not exist, which the caller reports as every column missing. -#}
    select
        column_name,
        ordinal_position as position,
        upper(data_type)
          || case
               when character_maximum_length is not null
                 then '(' || cast(character_maximum_length as {{ dbt.type_string() }}) || ')'
               when lower(data_type) in ('numeric', 'decimal') and numeric_precision is not null
                 then '(' || cast(numeric_precision as {{ dbt.type_string() }}) || ','
                      || cast(coalesce(numeric_scale, 0) as {{ dbt.type_string() }}) || ')'
               else ''
             end as column_type
    from information_schema.columns
    where lower(table_schema) = lower('{{ relation.schema }}')
      and lower(table_name) = lower('{{ relation.identifier }}')
      {%- if relation.database %}
      and lower(table_catalog) = lower('{{ relation.database }}')
      {%- endif %}
{% endmacro %}

{% macro spark___catalog_columns(relation) %}
{#- Spark has no information_schema: the columns come from the catalog through dbt-spark
    (`describe table extended`), as literal rows. Types are as Spark spells them, with decimal
    precision and scale (decimal(10,2)); a missing relation gives no rows. -#}
  {%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
  {%- set text = dbt.type_string() -%}
  select cast(null as {{ text }}) as column_name, cast(null as int) as position,
         cast(null as {{ text }}) as column_type
  where 1 = 0
  {%- for column in columns %}
  union all
  select '{{ column.name | replace("'", "''") }}', {{ loop.index }}, '{{ column.data_type | upper }}'
  {%- endfor %}
{% endmacro %}
