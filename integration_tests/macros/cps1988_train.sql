{% macro cps1988_train(holdout=0.2) %}
{#- The rows of raw.cps1988 a twin with synth.holdout = `holdout` is fit on (whole-row hash). -#}
  {%- set source_relation = source('raw', 'cps1988') -%}
  select * from {{ source_relation }}
  where {{ dbt_synth.hash_fraction(dbt_synth.row_text(dbt_synth.column_kinds(source_relation))) }} >= {{ holdout }}
{% endmacro %}
