{% macro column_kinds(relation, columns=none, exclude=[]) %}
{#- The columns a generic test looks at, each with the kind that decides its metric:
    `numeric`, `temporal`, `boolean` or `categorical`. Read from the warehouse (the source's
    types), in table order; `columns` narrows, `exclude` removes (e.g. keys). Returns a list of
    dicts {name, quoted, kind, data_type}. -#}
  {% if not execute %}{{ return([]) }}{% endif %}
  {% set wanted = columns | map('lower') | list if columns else none %}
  {% set dropped = exclude | map('lower') | list %}
  {% set result = [] %}
  {% for column in adapter.get_columns_in_relation(relation) %}
    {% set name = column.name %}
    {% if (wanted is none or name | lower in wanted) and name | lower not in dropped %}
      {% do result.append({
          'name': name,
          'quoted': adapter.quote(name),
          'kind': dbt_synth.type_kind(column.data_type),
          'data_type': column.data_type,
      }) %}
    {% endif %}
  {% endfor %}
  {% if wanted is not none and result | length != wanted | length %}
    {% set found = result | map(attribute='name') | map('lower') | list %}
    {{ exceptions.raise_compiler_error(
        "dbt-synth: relation " ~ relation ~ " has no column(s) "
        ~ (wanted | reject('in', found) | list) ~ ". Fix: list existing columns in `columns`.") }}
  {% endif %}
  {{ return(result) }}
{% endmacro %}

{% macro type_kind(data_type) %}
{#- numeric / temporal / boolean / categorical from a warehouse type name (DuckDB, Postgres or
    Spark spelling). Intervals, JSON, lists and the like are compared as text: categorical
    (Spark writes nested types with angle brackets: array<int>, map<string,int>, struct<...>). -#}
  {% set t = data_type | lower %}
  {% if t.startswith('bool') %}{{ return('boolean') }}
  {% elif 'interval' in t %}{{ return('categorical') }}
  {% elif t.startswith('date') or t.startswith('time') %}{{ return('temporal') }}
  {% elif t.endswith('[]') or '<' in t or '(' in t and not (t.startswith('decimal') or t.startswith('numeric')) %}
    {{ return('categorical') }}
  {% elif 'int' in t or t.startswith('decimal') or t.startswith('numeric') or 'float' in t
          or 'double' in t or t == 'real' or t.startswith('serial') or t.startswith('bigserial') %}
    {{ return('numeric') }}
  {% else %}{{ return('categorical') }}
  {% endif %}
{% endmacro %}
