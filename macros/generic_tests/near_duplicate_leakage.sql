{% test near_duplicate_leakage(model, compare_model, quasi_identifiers, k=1, holdout=0.2, key=none, bins=10, max_gap=0.03) %}
  {{ return(adapter.dispatch('test_near_duplicate_leakage', 'dbt_synth')(model, compare_model, quasi_identifiers, k, holdout, key, bins, max_gap)) }}
{% endtest %}

{% macro default__test_near_duplicate_leakage(model, compare_model, quasi_identifiers, k, holdout, key, bins, max_gap) %}
{#- Is the twin closer to the rows it was trained on than to rows it never saw?

    The real table splits as at fit time (dbt_synth/holdout.py): a row is held out when the hash
    fraction of its key text (or whole row) is < `holdout`. The rows with fraction in
    [holdout, 2*holdout) are a train sample of the same expected size. Each quasi-identifier is
    binned (dbt_synth.bin_codes, cuts computed in this query, never inlined); distance is Hamming on the codes. For every twin row we find
    its nearest train-sample row and nearest holdout row within distance k, without an all-pairs
    join: the columns are split into k+1 groups, a pair within distance k agrees on at least one
    group (pigeonhole), so k+1 equi-joins give every candidate; candidates are then verified.
    Joins run on distinct code patterns (with counts), not rows.

    Fails when share(closer to train) - share(closer to holdout) > max_gap: a twin that never saw
    the data has both shares equal up to sampling noise. -#}
{%- if not 0 < holdout <= 0.5 -%}
  {{ exceptions.raise_compiler_error("dbt-synth: near_duplicate_leakage holdout=" ~ holdout ~ " must be in (0, 0.5]. Fix: use the twin's synth.holdout, e.g. 0.2.") }}
{%- endif -%}
{%- set qis = dbt_synth.column_kinds(compare_model, quasi_identifiers) -%}
{%- if execute and qis | length < k + 1 -%}
  {{ exceptions.raise_compiler_error("dbt-synth: near_duplicate_leakage needs more than k=" ~ k ~ " quasi_identifiers, got " ~ qis | length ~ ". Fix: lower k or list more columns.") }}
{%- endif -%}
{%- set key_cols = dbt_synth.column_kinds(compare_model, key) -%}
{%- set binned = dbt_synth.bin_codes(compare_model, qis, bins) -%}
{%- set num = dbt_synth.type_double() -%}
{%- set text = dbt.type_string() -%}
{#- k+1 groups of similar selectivity: largest code counts first, each to the group whose
    product of code counts is smallest so far. -#}
{%- set groups = [] -%}
{%- for _ in range(k + 1) %}{% do groups.append({'size': 1, 'members': []}) %}{% endfor -%}
{%- set sized = [] -%}
{%- for c in qis %}{% do sized.append({'i': loop.index, 'card': binned.sizes[c.name]}) %}{% endfor -%}
{%- for c in sized | sort(attribute='card', reverse=true) -%}
  {%- set g = groups | sort(attribute='size') | first -%}
  {%- do g.members.append(c.i) -%}
  {%- do g.update({'size': g.size * c.card}) -%}
{%- endfor -%}
{%- set q = range(1, qis | length + 1) | list -%}
with{{ binned.ctes }}
real_coded as (
    select
        {{ dbt_synth.hash_fraction(dbt_synth.row_text(key_cols)) }} as u,
        {%- for c in qis %}
        {{ binned.codes[c.name] }} as q{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ compare_model }} {{ binned.join }}
),
train_patterns as (
    select {% for i in q %}q{{ i }}, {% endfor %}count(*) as n
    from real_coded where u >= {{ holdout }} and u < {{ 2 * holdout }}
    group by {% for i in q %}q{{ i }}{{ ', ' if not loop.last }}{% endfor %}
),
holdout_patterns as (
    select {% for i in q %}q{{ i }}, {% endfor %}count(*) as n
    from real_coded where u < {{ holdout }}
    group by {% for i in q %}q{{ i }}{{ ', ' if not loop.last }}{% endfor %}
),
twin_patterns as (
    select row_number() over (order by {% for i in q %}q{{ i }}{{ ', ' if not loop.last }}{% endfor %}) as pid,
           grouped.*
    from (
        select {% for i in q %}q{{ i }}, {% endfor %}count(*) as n
        from (
            select
                {%- for c in qis %}
                {{ binned.codes[c.name] }} as q{{ loop.index }}{{ ',' if not loop.last }}
                {%- endfor %}
            from {{ model }} {{ binned.join }}
        ) as coded
        group by {% for i in q %}q{{ i }}{{ ', ' if not loop.last }}{% endfor %}
    ) as grouped
),
{%- for side in ['train', 'holdout'] %}
{{ side }}_nearest as (
    select pid, min(distance) as distance
    from (
        {%- for g in groups if g.members %}
        select t.pid,
            {% for i in q -%}
            case when t.q{{ i }} = r.q{{ i }} then 0 else 1 end{{ ' +' if not loop.last }}
            {% endfor -%} as distance
        from twin_patterns as t
        join {{ side }}_patterns as r
          on {% for i in g.members %}t.q{{ i }} = r.q{{ i }}{{ ' and ' if not loop.last }}{% endfor %}
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    ) as candidates
    where distance <= {{ k }}
    group by pid
),
{%- endfor %}
scored as (
    select t.n,
           coalesce(tr.distance, {{ k + 1 }}) as d_train,
           coalesce(ho.distance, {{ k + 1 }}) as d_holdout
    from twin_patterns as t
    left join train_nearest as tr on t.pid = tr.pid
    left join holdout_nearest as ho on t.pid = ho.pid
),
summary as (
    select
        cast(sum(n) as {{ num }}) as twin_rows,
        cast(sum(case when d_train < d_holdout then n else 0 end) as {{ num }}) as closer_train,
        cast(sum(case when d_holdout < d_train then n else 0 end) as {{ num }}) as closer_holdout,
        cast(sum(case when d_train = 0 then n else 0 end) as {{ num }}) as same_train,
        cast(sum(case when d_holdout = 0 then n else 0 end) as {{ num }}) as same_holdout
    from scored
),
results as (
    select
        '{{ qis | map(attribute="name") | join(", ") }}' as column_name,
        'closer_to_train_gap' as metric,
        (closer_train - closer_holdout) / nullif(twin_rows, 0) as observed,
        {{ max_gap }} as threshold,
        'twin rows closer to train ' || {{ dbt_synth.rounded_text("closer_train / nullif(twin_rows, 0)", 4) }}
          || ', to holdout ' || {{ dbt_synth.rounded_text("closer_holdout / nullif(twin_rows, 0)", 4) }}
          || '; same binned QIs as a train row ' || {{ dbt_synth.rounded_text("same_train / nullif(twin_rows, 0)", 4) }}
          || ', as a holdout row ' || {{ dbt_synth.rounded_text("same_holdout / nullif(twin_rows, 0)", 4) }}
          || ' (Hamming k={{ k }}, holdout {{ holdout }})' as detail
    from summary
)
select column_name, metric, {{ dbt_synth.observed_or_null() }} as observed, threshold,
    {%- if dbt_synth.observed_hidden() %}
    'shares of twin rows closer to train and to holdout not stored (Hamming k={{ k }}, holdout {{ holdout }})'
    {%- else %}
    detail
    {%- endif %} as detail
from (select * from results where observed > threshold) as failing
{% endmacro %}
