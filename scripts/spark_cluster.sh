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
  --conf spark.sql.shuffle.partitions=4 \
  --conf spark.executor.memory=1g \
  >"$WORK/connect.log" 2>&1 &
PIDS+=($!)
wait_port "$CONNECT_PORT" connect "${PIDS[-1]}"
echo "spark_cluster: services up after $((SECONDS - STARTED)) s"

export SPARK_REMOTE="sc://127.0.0.1:$CONNECT_PORT"
cd integration_tests
"$PY" scripts/load_data.py --target spark
"$PY" scripts/load_data.py --target spark --demo child
"$PY" scripts/spark_session.py deps --quiet --target spark_connect --profiles-dir .
"$PY" scripts/spark_session.py build --target spark_connect --profiles-dir . \
  --select cps1988_twin --target-path "$WORK/target"
echo "spark_cluster: demo twin built and tested on the cluster after $((SECONDS - STARTED)) s"
"$PY" scripts/spark_session.py deps --quiet --target spark_connect --project-dir child \
  --profiles-dir child
"$PY" scripts/spark_session.py build --target spark_connect --project-dir child \
  --profiles-dir child --target-path "$WORK/child_target"
echo "spark_cluster: child twin built and tested on the cluster after $((SECONDS - STARTED)) s"
