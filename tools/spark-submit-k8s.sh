#!/usr/bin/env bash
# Submit a flagship Spark job to Kubernetes (cluster mode) with the image built from deploy/Dockerfile.spark.
#
#   tools/spark-submit-k8s.sh <job> [job arguments...]
#   K8S_API=https://k8s.example:6443 SPARK_IMAGE=ghcr.io/flagship/spark:0.1.0 \
#     tools/spark-submit-k8s.sh forecasting_features --input s3a://bucket/retail/ --output s3a://bucket/features/
#
# Everything cluster-specific comes from the environment; this script holds no credentials. Object-store access
# comes from the pod's service account (IRSA on EKS, Workload Identity on GKE), not from keys in SPARK_CONF.
#   K8S_API          API server URL (required)            SPARK_IMAGE      container image (required)
#   K8S_NAMESPACE    namespace (default spark-jobs)       K8S_SA           service account (default spark)
#   SPARK_EXECUTORS  executor count (default 2)           SPARK_CONF       extra space-separated key=value settings
#   DRY_RUN=1        print the spark-submit command instead of running it
set -euo pipefail

job="${1:?usage: $0 <job> [args...]}"
shift
: "${K8S_API:?set K8S_API to the Kubernetes API server URL}"
: "${SPARK_IMAGE:?set SPARK_IMAGE to the image built from deploy/Dockerfile.spark}"

conf_args=()
for kv in ${SPARK_CONF:-}; do
  [[ "$kv" == *=* ]] || { echo "SPARK_CONF entry '$kv' is not key=value" >&2; exit 2; }
  case "$kv" in *secret*|*password*|*access.key*|*secret.key*) echo "refusing '$kv': use the service account, not keys" >&2; exit 2;; esac
  conf_args+=(--conf "$kv")
done

cmd=(spark-submit
  --master "k8s://${K8S_API}"
  --deploy-mode cluster
  --name "flagship-${job//_/-}"
  --conf spark.kubernetes.namespace="${K8S_NAMESPACE:-spark-jobs}"
  --conf spark.kubernetes.authenticate.driver.serviceAccountName="${K8S_SA:-spark}"
  --conf spark.kubernetes.container.image="${SPARK_IMAGE}"
  --conf spark.kubernetes.container.image.pullPolicy=IfNotPresent
  --conf spark.executor.instances="${SPARK_EXECUTORS:-2}"
  --conf spark.executor.cores=2
  --conf spark.executor.memory=4g
  --conf spark.driver.memory=2g
  --conf spark.sql.session.timeZone=UTC
  --conf spark.sql.sources.partitionOverwriteMode=dynamic
  --conf spark.sql.adaptive.enabled=true
  --conf spark.ui.enabled=true
  --conf spark.ui.prometheus.enabled=true
  --conf spark.metrics.namespace=flagship
  --conf spark.metrics.conf=/opt/flagship/deploy/spark/metrics.properties
  --conf spark.kubernetes.driver.annotation.prometheus.io/scrape=true
  --conf spark.kubernetes.driver.annotation.prometheus.io/path=/metrics/prometheus/
  --conf spark.kubernetes.driver.annotation.prometheus.io/port=4040
  "${conf_args[@]}"
  "local:///opt/flagship/tools/spark_jobs/${job}.py" "$@")

if [[ "${DRY_RUN:-0}" == 1 ]]; then printf '%q ' "${cmd[@]}"; echo; else exec "${cmd[@]}"; fi
