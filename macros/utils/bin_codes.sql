{% macro bin_codes(relation, columns, bins=10) %}
{#- A small integer code per value, the same mapping for the real table and the twin, learned
    from `relation` (the real table): numbers, dates and times by `bins` quantile bins (ntile;
    ties merged), categories by their `bins - 1` most frequent values plus one code for the
    rest, booleans as 0/1. NULL is code -1. Returns {column name: SQL expression}, each
    expression over the bare quoted column. -#}
  {% set codes = {} %}
  {% if not execute %}{{ return(codes) }}{% endif %}
  {% set text = dbt.type_string() %}
  {% for c in columns %}
    {% if c.kind == 'boolean' %}
      {% do codes.update({c.name: "case when " ~ c.quoted ~ " is null then -1 when " ~ c.quoted ~ " then 1 else 0 end"}) %}
    {% elif c.kind in ('numeric', 'temporal') %}
      {% set query %}
        select max(v) as upper
        from (
          select {{ c.quoted }} as v, ntile({{ bins }}) over (order by {{ c.quoted }}) as b
          from {{ relation }} where {{ c.quoted }} is not null
        ) as ranked
        group by b order by 1
      {% endset %}
      {% set uppers = run_query(query).columns[0].values() | unique | list %}
      {% set branches = [] %}
      {% for upper in uppers[:-1] %}
        {% if c.kind == 'temporal' %}
          {% set literal = "cast('" ~ upper ~ "' as " ~ c.data_type ~ ")" %}
        {% else %}
          {% set literal = upper | string %}
        {% endif %}
        {% do branches.append("when " ~ c.quoted ~ " <= " ~ literal ~ " then " ~ loop.index0) %}
      {% endfor %}
      {% do codes.update({c.name: "case when " ~ c.quoted ~ " is null then -1 " ~ branches | join(" ")
                                   ~ " else " ~ ([uppers | length - 1, 0] | max) ~ " end"}) %}
    {% else %}
      {% set query %}
        select cast({{ c.quoted }} as {{ text }}) as v, count(*) as n
        from {{ relation }} where {{ c.quoted }} is not null
        group by 1 order by 2 desc, 1 limit {{ bins - 1 }}
      {% endset %}
      {% set values = run_query(query).columns[0].values() %}
      {% set branches = [] %}
      {% for value in values %}
        {% do branches.append("when cast(" ~ c.quoted ~ " as " ~ text ~ ") = '" ~ (value | replace("'", "''")) ~ "' then " ~ loop.index0) %}
      {% endfor %}
      {% do codes.update({c.name: "case when " ~ c.quoted ~ " is null then -1 " ~ branches | join(" ")
                                   ~ " else " ~ (values | length) ~ " end"}) %}
    {% endif %}
  {% endfor %}
  {{ return(codes) }}
{% endmacro %}
