{% macro synth_should_full_refresh(twins=none) %}
  {#-
    `should_full_refresh()` for synth mode (the root override `dbt-synth init` writes calls
    it). dbt's own rule (the model's `full_refresh` config, else `--full-refresh`), except that
    in synth mode a node built on twins is always rebuilt whole: its table may hold rows that a
    real build put there, and an incremental merge would keep them and read them (`{{ this }}`
    in `is_incremental()` filters). The real pipeline that twins are fit on keeps dbt's rule.
  -#}
  {% set configured = config.get('full_refresh') %}
  {% if configured is none %}{% set configured = flags.FULL_REFRESH %}{% endif %}
  {% if execute and dbt_synth.synth_mode() and dbt_synth.synth_redirects_in_node(twins) %}
    {% if model.unique_id not in dbt_synth.synth_real_side() %}{{ return(true) }}{% endif %}
  {% endif %}
  {{ return(configured) }}
{% endmacro %}

{% macro synth_check_snapshot(label, twin) %}
  {#-
    In synth mode a snapshot that reads a twin would merge twin rows into its history table,
    beside the rows real builds kept there, and models reading the snapshot would read both:
    fail compilation instead. Left out of the build, the snapshot is a real table: a model
    reading it fails in synth mode too (`synth_check_real_read`) unless passed through.
  -#}
  {% if execute and model.resource_type == 'snapshot' %}
    {% do exceptions.raise_compiler_error(
      "dbt-synth: snapshot '" ~ model.name ~ "': in synth mode it would read the twin '" ~ twin
      ~ "' of '" ~ label ~ "' and merge its rows into the snapshot's history, beside the real "
      ~ "rows earlier builds kept there. Fix: leave snapshots out of synth builds (dbt build "
      ~ "--vars 'synth: true' --exclude resource_type:snapshot); a model that reads the "
      ~ "snapshot then needs it passed through (synth_passthrough: [" ~ model.name ~ "])") %}
  {% endif %}
{% endmacro %}
