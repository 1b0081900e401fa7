{% macro bin_codes(relation, columns, bins=10) %}
{#- A small integer code per value, the same mapping for the real table and the twin, learned
    from `relation` (the real table): numbers, dates and times by `bins` quantile bins (ntile;
    ties merged), categories by their `bins - 1` most frequent values plus one code for the
    rest, booleans as 0/1. NULL is code -1.

    The cut points and top categories are computed inside the test's own query, in CTEs, and
    never fetched: no value of the real table is written into the compiled SQL (target/,
    logs/dbt.log). Returns a dict:
      ctes:  CTE definitions to put in the query's WITH list (each followed by a comma);
             they end with `bin_cuts`, one row holding every column's cuts.
      join:  `cross join bin_cuts`, to follow the FROM of any relation being coded.
      codes: {column name: SQL expression over the bare quoted column and bin_cuts}.
      sizes: {column name: the most codes the column can take}, NULL's included. -#}
  {% set text = dbt.type_string() %}
  {% set ctes = [] %}
  {% set cut_tables = [] %}
  {% set codes = {} %}
  {% set sizes = {} %}
  {% for c in columns %}
    {% set i = loop.index %}
    {% if c.kind == 'boolean' %}
      {% do codes.update({c.name: "case when " ~ c.quoted ~ " is null then -1 when " ~ c.quoted ~ " then 1 else 0 end"}) %}
      {% do sizes.update({c.name: 3}) %}
    {% else %}
      {% if c.kind in ('numeric', 'temporal') %}
        {#- Distinct upper ends of the ntile bins, the largest left out: a value's code is the
            number of those below it. -#}
        {% set ranked = dbt_synth.quantile_edges(relation, c.quoted, bins, 'bin_edges_' ~ i) %}
        {% set kept = "r < m - 1" %}
        {% set test = c.quoted ~ " <= " %}
      {% else %}
        {#- The `bins - 1` most frequent values (ties by value), as text. -#}
        {% set ranked %}
bin_edges_{{ i }} as (
    select upper, row_number() over (order by n desc, upper) - 1 as r
    from (
        select cast({{ c.quoted }} as {{ text }}) as upper, count(*) as n
        from {{ relation }} where {{ c.quoted }} is not null
        group by 1
    ) as counted
),
{%- endset %}
        {% set kept = "r < " ~ (bins - 1) %}
        {% set test = "cast(" ~ c.quoted ~ " as " ~ text ~ ") = " %}
      {% endif %}
      {% set cut %}
bin_cut_{{ i }} as (
    select
        {%- for j in range(bins - 1) %}
        max(case when r = {{ j }} and {{ kept }} then upper end) as cut_{{ i }}_{{ j }},
        {%- endfor %}
        count(case when {{ kept }} then 1 end) as rest_{{ i }}
    from bin_edges_{{ i }}
),
{%- endset %}
      {% do ctes.append(ranked) %}
      {% do ctes.append(cut) %}
      {% do cut_tables.append("bin_cut_" ~ i) %}
      {#- Missing cuts (fewer distinct values than bins) are NULL: their WHEN never holds. -#}
      {% set branches = [] %}
      {% for j in range(bins - 1) %}
        {% do branches.append("when " ~ test ~ "bin_cuts.cut_" ~ i ~ "_" ~ j ~ " then " ~ j) %}
      {% endfor %}
      {% do codes.update({c.name: "case when " ~ c.quoted ~ " is null then -1 " ~ branches | join(" ")
                                   ~ " else bin_cuts.rest_" ~ i ~ " end"}) %}
      {% do sizes.update({c.name: bins + 1}) %}
    {% endif %}
  {% endfor %}
  {% if cut_tables %}
    {% do ctes.append("\nbin_cuts as (\n    select * from " ~ cut_tables | join(" cross join ") ~ "\n),") %}
  {% else %}
    {% do ctes.append("\nbin_cuts as (\n    select 1 as no_cuts\n),") %}
  {% endif %}
  {{ return({'ctes': ctes | join(''), 'join': 'cross join bin_cuts', 'codes': codes, 'sizes': sizes}) }}
{% endmacro %}


{% macro quantile_edges(relation, quoted, bins, name) %}
{#- A CTE `name` of the distinct upper ends of `bins` quantile bins of column `quoted`, with
    `r` their rank from 0 and `m` how many there are (followed by a comma). The uppers come
    from quantile_uppers, the one part that differs by warehouse. -#}
{%- set sql %}
{{ name }} as (
    select upper, row_number() over (order by upper) - 1 as r, count(*) over () as m
    from (
        select distinct upper
        from ({{ adapter.dispatch('quantile_uppers', 'dbt_synth')(relation, quoted, bins) }}) as quantiles
    ) as uppers
),
{%- endset %}
{{ return(sql) }}
{% endmacro %}

{% macro default__quantile_uppers(relation, quoted, bins) %}
{#- Exact: the largest value of each ntile bin (a query of one column, `upper`). -#}
        select max(v) as upper
        from (
            select {{ quoted }} as v, ntile({{ bins }}) over (order by {{ quoted }}) as b
            from {{ relation }} where {{ quoted }} is not null
        ) as tiled
        group by b
{%- endmacro %}

{% macro spark__quantile_uppers(relation, quoted, bins) %}
{#- Spark runs a window without PARTITION BY in one task: the exact ntile sorted all rows on
    one core (a 10M-row correlation_drift took 1,002 s against DuckDB's 133 s). The quantiles
    1/bins .. 1 by `percentile_approx` (quantile_sketch: rank error at most rows/10,000) are a
    distributed aggregate; the codes use the same cuts for the real table and the twin. -#}
{%- set fractions = [] %}
{%- for k in range(1, bins + 1) %}{% do fractions.append((k / bins) | string) %}{% endfor %}
        select explode(q) as upper
        from (
            select {{ dbt_synth.quantile_sketch(quoted, fractions) }} as q
            from {{ relation }} where {{ quoted }} is not null
        ) as approximated
{%- endmacro %}
