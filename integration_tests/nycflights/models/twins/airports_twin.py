import dbt_synth


def model(dbt, session):
    dbt.config(materialized="table", synth={"epsilon": 1.0, "primary_key": "faa"})
    return dbt_synth.twin(dbt, session, dbt.source("raw", "airports"), dbt.config.get("synth"))
