-- The train split with ±5% noise on wage: no row is an exact copy, every row is a near copy.
{%- set train_cols = dbt_synth.column_kinds(source('raw', 'cps1988')) %}
select
    cast(wage * (0.95 + 0.1 * {{ dbt_synth.hash_fraction(dbt_synth.row_text(train_cols) ~ " || 'noise'") }}) as {{ dbt_synth.type_double() }}) as wage,
    education, experience, ethnicity, smsa, region, parttime
from ({{ cps1988_train() }}) as train
