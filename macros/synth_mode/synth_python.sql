{% macro synth_python_refs(model, twins=none) %}
  {#-
    Python lines that complete dbt's `ref` helper of a Python model in synth mode: the model's
    `dbt.ref('raw_users')` was recorded through the `ref` override as its twin, so dbt's helper
    knows the twin only; these lines make the original name read the twin too.
  -#}
  {% do dbt_synth.synth_check_real_seeds_loaded(model, twins) %}
  {% set aliases = dbt_synth.synth_python_aliases(model, twins, 'ref') %}
  {% if not aliases %}{{ return('') }}{% endif %}
  {{ return(
    "\n\n# dbt-synth synth mode: dbt.ref() of a twinned seed or model reads its twin.\n"
    ~ "_dbt_synth_ref = ref\n"
    ~ "_dbt_synth_ref_twins = " ~ (aliases | tojson) ~ "\n\n\n"
    ~ "def ref(*args, **kwargs):\n"
    ~ "    twin = _dbt_synth_ref_twins.get('.'.join(args))\n"
    ~ "    return _dbt_synth_ref(twin, **kwargs) if twin else _dbt_synth_ref(*args, **kwargs)\n"
  ) }}
{% endmacro %}

{% macro synth_python_sources(model, twins=none) %}
  {#- As synth_python_refs, for `dbt.source('raw', 'users')` of a twinned source table. -#}
  {% set aliases = dbt_synth.synth_python_aliases(model, twins, 'source') %}
  {% if not aliases %}{{ return('') }}{% endif %}
  {{ return(
    "\n\n# dbt-synth synth mode: dbt.source() of a twinned source table reads its twin.\n"
    ~ "_dbt_synth_source = source\n"
    ~ "_dbt_synth_source_twins = " ~ (aliases | tojson) ~ "\n\n\n"
    ~ "def source(*args, dbt_load_df_function):\n"
    ~ "    twin = _dbt_synth_source_twins.get('.'.join(args))\n"
    ~ "    if twin:\n"
    ~ "        return ref(twin, dbt_load_df_function=dbt_load_df_function)\n"
    ~ "    return _dbt_synth_source(*args, dbt_load_df_function=dbt_load_df_function)\n"
  ) }}
{% endmacro %}

{% macro synth_python_aliases(model, twins, kind) %}
  {#-
    Original label → twin, for the twins a Python model recorded in place of a `kind`
    ('ref' or 'source') it names: the twin is among its refs and the original is not among
    what it reads (a model that names both reads each as named).
  -#}
  {% if not dbt_synth.synth_mode() or not dbt_synth.synth_redirects_in_node(twins) %}
    {{ return({}) }}
  {% endif %}
  {% set refs = model.refs | map(attribute='name') | list %}
  {% set read = refs if kind == 'ref' else model.sources | map('join', '.') | list %}
  {% set aliases = {} %}
  {% for label, twin in (twins or {}).items()
        if ('.' in label) == (kind == 'source') and twin in refs and label not in read
           and label not in var('synth_passthrough', []) %}
    {% do aliases.update({label: twin}) %}
  {% endfor %}
  {{ return(aliases) }}
{% endmacro %}

{% macro synth_check_real_seeds_loaded(model, twins) %}
  {#-
    A twin about to be built (`dbt run`/`build`) whose real seed is not in the warehouse (a
    build with `synth_drop_real_seeds` dropped it after its twins were built). One message with the fix, rather than
    the warehouse's "table does not exist" from inside the Python model.
  -#}
  {% if not execute or flags.WHICH not in ('run', 'build') %}{{ return('') }}{% endif %}
  {% if model.name not in (twins or {}).values() and 'dbt_synth_twin' not in (model.tags or []) %}
    {{ return('') }}
  {% endif %}
  {% for uid in model.depends_on.nodes if uid.startswith('seed.') %}
    {% set seed = graph.nodes[uid] %}
    {% if adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.alias) is none %}
      {% do exceptions.raise_compiler_error(
        "dbt-synth: model '" ~ model.name ~ "': its real seed '" ~ seed.name ~ "' is not in the warehouse (synth_drop_real_seeds dropped it after its twins were built). Fix: dbt build --select +" ~ model.name ~ " (loads the seed, then builds the twin)"
      ) %}
    {% endif %}
  {% endfor %}
{% endmacro %}
