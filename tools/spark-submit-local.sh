#!/usr/bin/env bash
# Run a flagship Spark job with spark-submit on this machine, exactly as on a cluster.
#
#   tools/spark-submit-local.sh <job> [job arguments...]
#   tools/spark-submit-local.sh forecasting_features --input sample_data/02-time-series-forecasting/aus_retail.csv.gz \
#       --output /tmp/features --partitions 4 --mode overwrite
#
# <job> is a file in tools/spark_jobs/ (without .py). Configuration comes from the environment, never from this file:
#   SPARK_MASTER   master URL (default local[2]: this machine has 2 cores shared by several people)
#   SPARK_CONF     space-separated key=value Spark settings, e.g. "spark.sql.shuffle.partitions=4 spark.driver.memory=2g"
#   SPARK_METRICS  path of a metrics.properties (default deploy/spark/metrics.properties when it exists)
#   SPARK_LOCAL_IP bind address (default 127.0.0.1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
job="${1:?usage: $0 <job> [args...]; jobs: $(ls "$root/tools/spark_jobs" | grep -v __init__ | sed 's/\.py$//' | tr '\n' ' ')}"
shift
script="$root/tools/spark_jobs/${job}.py"
[[ -f "$script" ]] || { echo "unknown job '$job': no $script" >&2; exit 2; }

export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$(command -v python)}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYSPARK_PYTHON}"

conf_args=()
for kv in ${SPARK_CONF:-}; do
  [[ "$kv" == *=* ]] || { echo "SPARK_CONF entry '$kv' is not key=value" >&2; exit 2; }
  conf_args+=(--conf "$kv")
done
metrics="${SPARK_METRICS:-$root/deploy/spark/metrics.properties}"
[[ -f "$metrics" ]] && conf_args+=(--conf "spark.metrics.conf=$metrics")

exec spark-submit \
  --master "${SPARK_MASTER:-local[2]}" \
  --name "flagship-${job}" \
  --conf spark.sql.session.timeZone=UTC \
  --conf spark.sql.sources.partitionOverwriteMode=dynamic \
  --conf spark.driver.host="$SPARK_LOCAL_IP" \
  --conf spark.driver.bindAddress="$SPARK_LOCAL_IP" \
  --conf spark.metrics.namespace=flagship \
  "${conf_args[@]}" \
  "$script" "$@"
