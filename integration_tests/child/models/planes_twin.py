import dbt_synth


def model(dbt, session):
    dbt.config(materialized="table", synth={"epsilon": 1.0, "primary_key": "tailnum"})
    return dbt_synth.twin(dbt, session, dbt.source("raw", "planes"), dbt.config.get("synth"))
