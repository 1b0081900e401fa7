#!/usr/bin/env bash
# A real Spark cluster on this machine: a standalone master, one worker (executors in their own
# JVMs and Python workers) and a Spark Connect server, all on 127.0.0.1, from the pyspark wheel.
# Then, through SPARK_REMOTE, dbt builds the demo twin with its tests (integration_tests,
# `--select cps1988_twin`) and the child project (integration_tests/child: a parent twin and a
# child twin whose keys are drawn from it, with the relationships test), and the services are
# stopped by their pids. The bad twins' SQL tests run on the local Spark (test_sql_spark.py).
# tests/test_spark_cluster.py runs this script in the suite (`make test`, CI).
#
#   scripts/spark_cluster.sh            # uses .venv/bin/python (make setup)
#
# Ports are free ones picked at start (other processes on the machine may hold Spark's
# defaults). Each JVM takes from 15 s to minutes to start on two busy cores. Logs and the
# warehouse go to a temporary folder, printed at the start and kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, the venv's own (no realpath)
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
WORK="$(mktemp -d /tmp/dbt_synth_cluster.XXXXXX)"
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$PY"
read -r MASTER_PORT CONNECT_PORT MASTER_UI WORKER_UI < <("$PY" -c '
import socket
held = [socket.socket() for _ in range(4)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
')
echo "spark_cluster: logs and warehouse in $WORK; master :$MASTER_PORT, connect :$CONNECT_PORT"
STARTED=$SECONDS

PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

wait_port() {  # wait_port PORT NAME PID: until something listens, or the process died
  for _ in $(seq 1 600); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "spark_cluster: $2 died"; tail -20 "$WORK/$2.log"; exit 1; }
    sleep 1
  done
  echo "spark_cluster: $2 not listening on $1 after 600 s"; tail -20 "$WORK/$2.log"; exit 1
}

"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI" >"$WORK/master.log" 2>&1 &
PIDS+=($!)
wait_port "$MASTER_PORT" master "${PIDS[-1]}"

"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
  --host 127.0.0.1 --cores 2 --memory 2g --webui-port "$WORKER_UI" \
  --work-dir "$WORK/worker" "spark://127.0.0.1:$MASTER_PORT" >"$WORK/worker.log" 2>&1 &
PIDS+=($!)

"$SPARK_HOME/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
  --master "spark://127.0.0.1:$MASTER_PORT" --name dbt-synth-connect \
  --conf spark.connect.grpc.binding.address=127.0.0.1 \
  --conf "spark.connect.grpc.binding.port=$CONNECT_PORT" \
  --conf spark.ui.enabled=false \
  --conf spark.sql.catalogImplementation=hive \
  --conf "spark.sql.warehouse.dir=$WORK/warehouse" \
  --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$WORK" \
  --conf "spark.pyspark.python=$PY" \
  --conf spark.sql.shuffle.partitions=2 \
  --conf spark.executor.memory=1g \
  >"$WORK/connect.log" 2>&1 &
PIDS+=($!)
wait_port "$CONNECT_PORT" connect "${PIDS[-1]}"
echo "spark_cluster: services up after $((SECONDS - STARTED)) s"

export SPARK_REMOTE="sc://127.0.0.1:$CONNECT_PORT"
cd integration_tests
# One Python process loads the tables and runs dbt four times: each process start (dbt, pyspark,
# dbt_synth) costs seconds on two busy cores. dbt's own output (its "Done. PASS=" lines) is kept.
"$PY" - "$WORK" "$((SECONDS - STARTED))" <<'PYTHON'
import sys
import time

sys.path.insert(0, "scripts")
import load_data  # noqa: E402
import spark_session  # noqa: E402

work, offset, begun = sys.argv[1], int(sys.argv[2]), time.monotonic()


def after() -> str:
    return f"after {offset + time.monotonic() - begun:.0f} s"


load_data.load_spark(load_data.DEMOS["cps"] + load_data.DEMOS["child"], flights_rows=20_000)
spark_session.register()
from dbt.cli.main import dbtRunner  # noqa: E402

print(f"spark_cluster: tables loaded {after()}", flush=True)


def dbt(*args: str) -> None:
    if not dbtRunner().invoke([*args, "--target", "spark_connect"]).success:
        sys.exit(f"spark_cluster: dbt {' '.join(args)} failed")

dbt("deps", "--quiet", "--profiles-dir", ".")
dbt("build", "--profiles-dir", ".", "--select", "cps1988_twin", "--target-path", f"{work}/target")
print(f"spark_cluster: demo twin built and tested on the cluster {after()}", flush=True)
dbt("deps", "--quiet", "--project-dir", "child", "--profiles-dir", "child")
dbt("build", "--project-dir", "child", "--profiles-dir", "child",
    "--target-path", f"{work}/child_target")
print(f"spark_cluster: child twin built and tested on the cluster {after()}", flush=True)
PYTHON
