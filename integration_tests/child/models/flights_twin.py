import dbt_synth

# tailnum → planes_twin comes from the relationships test in twins.yml (the manifest). The other
# key-like columns (carrier, origin, dest) have no parent twin here: they are plain categories.


def model(dbt, session):
    dbt.config(materialized="table", synth={"epsilon": 1.0})
    planes = dbt.ref("planes_twin")
    return dbt_synth.child_twin(
        dbt,
        session,
        dbt.source("raw", "flights"),
        dbt.config.get("synth"),
        parents={"planes_twin": planes},
    )
