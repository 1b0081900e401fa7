{% macro synth_ref(ref_args, ref_kwargs={}, twins=none) %}
  {#-
    `ref()` for a project in synth mode (`--vars 'synth: true'`): a twinned seed or model is read
    through its twin. `twins` maps a twinned node's name to its twin's; the root project's `ref`
    override that `dbt-synth init` writes passes it. Any other ref is dbt's own, after
    `synth_check_real_read` made sure it does not read real data silently.
  -#}
  {% set name = ref_args[-1] %}
  {% set twin = dbt_synth.synth_twin_to_read(name, twins) %}
  {% if twin %}
    {% do dbt_synth.synth_check_snapshot(name, twin) %}
    {{ return(builtins.ref(twin)) }}
  {% endif %}
  {% set relation = builtins.ref(*ref_args, **ref_kwargs) %}
  {% do dbt_synth.synth_check_real_read(name, twins) %}
  {{ return(relation) }}
{% endmacro %}

{% macro synth_source(source_name, table_name, twins=none) %}
  {#- `source()` for synth mode: a twinned source table is read through its twin (see synth_ref). -#}
  {% set label = source_name ~ '.' ~ table_name %}
  {#- A root override written before `twins` existed: every source is expected to have a twin. -#}
  {% set twins = twins if twins is not none else {label: dbt_synth.synth_twin_name(table_name)} %}
  {% set twin = dbt_synth.synth_twin_to_read(label, twins) %}
  {% if twin %}
    {% do dbt_synth.synth_check_snapshot(label, twin) %}
    {{ return(builtins.ref(twin)) }}
  {% endif %}
  {% set relation = builtins.source(source_name, table_name) %}
  {% do dbt_synth.synth_check_real_read(label, twins) %}
  {{ return(relation) }}
{% endmacro %}

{% macro synth_twin_to_read(label, twins) %}
  {#-
    The twin the current node reads instead of `label` (a seed/model name or `source.table`),
    or none. At parse time dbt records what this returns as the node's dependency; at compile
    time the twin is read only where it was recorded, as dbt requires. Generic tests and Python
    models record theirs through the root overrides too (see dbt_synth_mode.sql).
  -#}
  {% set twin = (twins or {}).get(label) %}
  {% if not twin or not dbt_synth.synth_mode() or not dbt_synth.synth_redirects_in_node(twins) %}
    {{ return(none) }}
  {% endif %}
  {% if model.name == twin or label in var('synth_passthrough', []) %}{{ return(none) }}{% endif %}
  {% if execute %}
    {% for uid in model.depends_on.nodes if uid.startswith('model.') and uid.split('.')[-1] == twin %}
      {{ return(twin) }}
    {% endfor %}
    {{ return(none) }}
  {% endif %}
  {{ return(twin) }}
{% endmacro %}

{% macro synth_redirects_in_node(twins=none) %}
  {#-
    False inside a twin (it reads the real tables it is fit on), in a test that compares a twin
    with its real table, and outside any node. A twin is known by its tag; while dbt parses a
    Python model the tags of its yml are not applied yet, so the list of twins (written from
    the same tag by `init`) names it too.
  -#}
  {% if model is not mapping or model.resource_type is not defined %}{{ return(false) }}{% endif %}
  {% if model.name in (twins or {}).values() %}{{ return(false) }}{% endif %}
  {% if model.resource_type == 'test' and dbt_synth.synth_test_reads_real(twins) %}
    {{ return(false) }}
  {% endif %}
  {{ return('dbt_synth_twin' not in (model.config.tags or model.tags or [])) }}
{% endmacro %}

{% macro synth_test_reads_real(twins=none) %}
  {#-
    True for a generic test declared on a twin or of this package: it compares a twin with the
    real table the twin is fit on (schema_matches, the drift and copy tests), so it reads both.
    Every other test reads twins in synth mode, like the models.
  -#}
  {% set namespace = (model.test_metadata or {}).get('namespace') %}
  {% set declared_on = (model.file_key_name or '').split('.')[-1] %}
  {{ return(namespace == 'dbt_synth' or declared_on in (twins or {}).values()) }}
{% endmacro %}
