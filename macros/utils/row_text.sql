{% macro row_text(columns, alias=none) %}
{#- The canonical text of a row (or of its key columns) that decides its holdout bucket; the same
    rule as dbt_synth/holdout.py::row_text. Values joined by '|', NULL as '\N', booleans as
    true/false, numbers other than integers with 6 decimals, dates and times as ISO text.
    `columns` is the list column_kinds returns. -#}
  {%- set prefix = alias ~ '.' if alias else '' -%}
  {%- set text = dbt.type_string() -%}
  {%- set parts = [] -%}
  {%- for c in columns -%}
    {%- set value = prefix ~ c.quoted -%}
    {%- set t = c.data_type | lower -%}
    {%- if c.kind == 'boolean' -%}
      {%- set rendered = "case when " ~ value ~ " then 'true' else 'false' end" -%}
    {%- elif c.kind == 'numeric' and not ('int' in t or 'serial' in t) -%}
      {%- set rendered = "cast(cast(" ~ value ~ " as decimal(38, 6)) as " ~ text ~ ")" -%}
    {%- else -%}
      {%- set rendered = "cast(" ~ value ~ " as " ~ text ~ ")" -%}
    {%- endif -%}
    {#- chr(92) || 'N' is \N everywhere: Spark reads a backslash in a literal as an escape. -#}
    {%- do parts.append("coalesce(" ~ rendered ~ ", chr(92) || 'N')") -%}
  {%- endfor -%}
  {{ parts | join(" || '|' || ") }}
{%- endmacro %}
