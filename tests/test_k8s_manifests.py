"""deploy/k8s/*.yaml validated offline against real schemas, then against the rules the schemas leave out.

- forecast-cronjob.yaml (batch/v1 CronJob): the Kubernetes JSON schemas that `kubernetes-validate` ships (generated
  from Kubernetes' OpenAPI), strict (an unknown field fails), for 1.27 (the first with CronJob `timeZone` GA) and 1.37.
- SparkApplication.yaml (sparkoperator.k8s.io/v1beta2): no package ships the operator's CRD schema, so the schema is
  the one of the operator's own published API models (`kubeflow-spark-api`, generated from the Go types its CRD is
  generated from), made strict, plus the CRD's kubebuilder enum/minimum markers, which those models lack (copied by
  hand below). Its metadata and pod security contexts are also checked against the Kubernetes core schemas.
- What the API server checks beyond any schema (names, labels, volume mounts, quantities, enums), the repository's
  rules (no secrets in sparkConf, PrometheusServlet wired up, the image has what the manifest points at) and the
  CronJob's schedule against the one defined in code.
Every validator is shown to reject a broken copy of the manifest.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import importlib.resources
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from test_deploy import forecast_job_build  # the build command atop the CronJob, parsed once

from flagship.core.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CRONJOB = ROOT / "deploy" / "k8s" / "forecast-cronjob.yaml"
SPARKAPP = ROOT / "deploy" / "k8s" / "SparkApplication.yaml"
SPARK_DOCKERFILE = ROOT / "deploy" / "Dockerfile.spark"
K8S_VERSIONS = ("1.27.0", "1.37.0")
IMAGE_ROOT = "/opt/flagship"  # WORKDIR of deploy/Dockerfile.spark: the repository's files sit below it in the image
DELETE = object()


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def mutated(doc: dict, path: str, value=DELETE) -> dict:
    """Return a deep copy of `doc` with the dotted `path` (list indexes as numbers) set to `value` or deleted."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return out


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The innermost errors under an anyOf/oneOf (Optional[...] fields are anyOf [schema, null]), null branches left out."""
    if not error.context:
        return [error]
    inner = [leaf for sub in error.context for leaf in _leaves(sub) if leaf.validator_value != "null"]
    return inner or [error]


def _errors(validator: jsonschema.Validator, obj) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for top in validator.iter_errors(obj)
        for e in _leaves(top)
    ]


# ---------------------------------------------------------------- Kubernetes core schemas (kubernetes-validate)
@functools.lru_cache
def _k8s_schemas(version: str) -> tuple[Path, Registry]:
    """Return (schema folder, registry holding _definitions.json) of one Kubernetes version, strict flavour."""
    try:
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        pytest.fail("kubernetes-validate is not installed: it ships the Kubernetes JSON schemas (dev extra)")
    folder = Path(str(root)) / f"v{version}-local-strict"
    assert folder.is_dir(), f"kubernetes-validate ships no schemas for Kubernetes {version}"
    defs = Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))
    return folder, defs @ Registry()


def k8s_errors(obj: dict, version: str, definition: str | None = None) -> list[str]:
    """Return schema errors of a whole resource (by kind and apiVersion) or of a fragment (`definition`, e.g.
    io.k8s.api.core.v1.SecurityContext) against Kubernetes `version`'s strict JSON schema."""
    folder, registry = _k8s_schemas(version)
    if definition:
        schema = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{definition}"}
    else:
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])
        path = folder / f"{obj['kind'].lower()}-{group_version}.json"
        assert path.exists(), f"no Kubernetes {version} schema for {obj['kind']} {obj['apiVersion']}"
        schema = json.loads(path.read_text())
    return _errors(jsonschema.Draft202012Validator(schema, registry=registry), obj)


# ---------------------------------------------------------------- the Spark Operator's schema (kubeflow-spark-api)
# kubebuilder markers of the operator's api/v1beta2 Go types that reach its CRD but not its Python models.
CRD_MARKERS = {
    ("SparkV1beta2SparkApplicationSpec", "type"): {"enum": ["Java", "Python", "Scala", "R"]},
    ("SparkV1beta2SparkApplicationSpec", "mode"): {"enum": ["cluster", "client", None]},
    ("SparkV1beta2SparkApplicationSpec", "pythonVersion"): {"enum": ["2", "3", None]},
    ("SparkV1beta2RestartPolicy", "type"): {"enum": ["Never", "Always", "OnFailure", None]},
    ("SparkV1beta2RestartPolicy", "onSubmissionFailureRetries"): {"minimum": 0},
    ("SparkV1beta2RestartPolicy", "onFailureRetries"): {"minimum": 0},
    ("SparkV1beta2RestartPolicy", "onSubmissionFailureRetryInterval"): {"minimum": 1},
    ("SparkV1beta2RestartPolicy", "onFailureRetryInterval"): {"minimum": 1},
    ("SparkV1beta2DriverSpec", "cores"): {"minimum": 1},
    ("SparkV1beta2ExecutorSpec", "cores"): {"minimum": 1},
    ("SparkV1beta2ExecutorSpec", "instances"): {"minimum": 1},
}


def _forbid_unknown_fields(node) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _forbid_unknown_fields(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_unknown_fields(value)


@functools.lru_cache
def spark_application_schema() -> dict:
    """Return the strict JSON schema of a sparkoperator.k8s.io/v1beta2 SparkApplication."""
    try:
        from kubeflow_spark_api.models import SparkV1beta2SparkApplication
    except ModuleNotFoundError:
        pytest.fail("kubeflow-spark-api is not installed: it ships the Spark Operator's API models (dev extra)")
    schema = SparkV1beta2SparkApplication.model_json_schema(by_alias=True)
    _forbid_unknown_fields(schema)  # like `kubectl apply --validate=strict`: a misspelt field is an error
    schema["properties"]["apiVersion"] = {"const": "sparkoperator.k8s.io/v1beta2"}
    schema["properties"]["kind"] = {"const": "SparkApplication"}
    for (model, field), rule in CRD_MARKERS.items():
        schema["$defs"][model]["properties"][field].update(rule)
    return schema


def spark_app_errors(doc: dict) -> list[str]:
    return _errors(jsonschema.Draft202012Validator(spark_application_schema()), doc)


# ---------------------------------------------------------------- what the API server checks beyond the schemas
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUANTITY = r"[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
ENUMS = {  # fields whose allowed values the API server enforces (the OpenAPI schemas type them as plain strings)
    "concurrencyPolicy": {"Allow", "Forbid", "Replace"},
    "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
}


def _qualified_key_errors(where: str, key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    ok = re.fullmatch(LABEL_NAME, name) and len(name) <= 63 and (not prefix or re.fullmatch(DNS_SUBDOMAIN, prefix))
    return [] if ok and len(prefix) <= 253 else [f"{where}: {key!r} is not a qualified name (prefix/name, name <= 63)"]


def _quantity_bytes(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q).groups()
    return float(number) * units.get(unit, 1)


def api_rule_errors(doc: dict) -> list[str]:
    """Return what the API server would reject that the JSON schemas do not express."""
    errs, meta = [], doc.get("metadata", {})
    name = str(meta.get("name", ""))
    if not re.fullmatch(DNS_SUBDOMAIN, name) or len(name) > 253:
        errs.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    if doc.get("kind") == "CronJob" and len(name) > 52:  # the controller appends an 11-character suffix to job names
        errs.append(f"metadata.name: {name!r} is longer than 52 characters (a CronJob's limit)")
    if not re.fullmatch(DNS_LABEL, str(meta.get("namespace", "default"))):
        errs.append(f"metadata.namespace: {meta.get('namespace')!r} is not a DNS-1123 label")

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                at = f"{where}.{key}" if where else key
                if key in ("labels", "annotations", "nodeSelector") and isinstance(value, dict):
                    for k, v in value.items():
                        errs.extend(_qualified_key_errors(f"{at}.{k}", k))
                        if key != "annotations" and not (v == "" or (re.fullmatch(LABEL_NAME, str(v)) and len(str(v)) <= 63)):
                            errs.append(f"{at}.{k}: label value {v!r} is not valid (<= 63 alphanumerics, -_.)")
                if key in ENUMS and value not in ENUMS[key]:
                    errs.append(f"{at}: {value!r} is not one of {sorted(ENUMS[key])}")
                if key in ("requests", "limits", "sizeLimit") and where.split(".")[-1] in ("resources", "emptyDir"):
                    for k, v in (value.items() if isinstance(value, dict) else [("", value)]):
                        if not re.fullmatch(QUANTITY, str(v)):
                            errs.append(f"{at}.{k}: {v!r} is not a Kubernetes quantity")
                if key == "containers" or key == "initContainers":
                    errs.extend(_pod_errors(node, at))
                walk(value, at)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}.{i}")

    walk(doc, "")
    return errs


def _pod_errors(pod: dict, where: str) -> list[str]:
    """Container names, volume mounts that name a declared volume, requests <= limits, Job restart policy."""
    errs, declared = [], {v.get("name") for v in pod.get("volumes", [])}
    if "restartPolicy" in pod and where.startswith("spec.jobTemplate") and pod["restartPolicy"] not in ("Never", "OnFailure"):
        errs.append(f"{where}: a Job's pod restartPolicy must be Never or OnFailure, not {pod['restartPolicy']!r}")
    for i, c in enumerate(pod.get(where.rsplit(".", 1)[-1], [])):
        at = f"{where}.{i}"
        if not re.fullmatch(DNS_LABEL, str(c.get("name", ""))):
            errs.append(f"{at}.name: {c.get('name')!r} is not a DNS-1123 label")
        paths = [m.get("mountPath") for m in c.get("volumeMounts", [])]
        if len(paths) != len(set(paths)):
            errs.append(f"{at}.volumeMounts: duplicate mountPath in {paths}")
        for m in c.get("volumeMounts", []):
            if m.get("name") not in declared:
                errs.append(f"{at}.volumeMounts: {m.get('name')!r} names no volume of the pod ({sorted(declared)})")
        res = c.get("resources", {})
        for k, limit in res.get("limits", {}).items():
            req = res.get("requests", {}).get(k)
            if req is not None and re.fullmatch(QUANTITY, str(req)) and re.fullmatch(QUANTITY, str(limit)):
                if _quantity_bytes(str(req)) > _quantity_bytes(str(limit)):
                    errs.append(f"{at}.resources: request {k}={req} exceeds its limit {limit}")
    return errs


# ---------------------------------------------------------------- the repository's rules
def _image_path(path: str) -> Path | None:
    """Return the repository file that a path inside the Spark image comes from (None if it is not under /opt/flagship)."""
    path = path.removeprefix("local://")
    return ROOT / path.removeprefix(IMAGE_ROOT + "/") if path.startswith(IMAGE_ROOT + "/") else None


def _copied_into_spark_image(rel: str) -> bool:
    """Whether deploy/Dockerfile.spark COPYs the repository path `rel` (a file, or a folder above it)."""
    copies = re.findall(r"^COPY\s+(.+)$", SPARK_DOCKERFILE.read_text(encoding="utf-8"), flags=re.M)
    sources = [s.rstrip("/") for line in copies for s in line.split()[:-1]]
    return any(rel == s or rel.startswith(s + "/") for s in sources)


def _secret_patterns() -> list[str]:
    """The sparkConf patterns tools/spark-submit-k8s.sh refuses (its `case` line), so both follow one rule."""
    script = (ROOT / "tools" / "spark-submit-k8s.sh").read_text(encoding="utf-8")
    found = re.search(r'case "\$kv" in ([^)]+)\)', script)
    assert found, 'tools/spark-submit-k8s.sh no longer has its `case "$kv" in *secret*|...)` refusal'
    return found.group(1).split("|")


def spark_conf_errors(doc: dict) -> list[str]:
    """No secret-looking settings; PrometheusServlet wired to the metrics file the image carries; annotations agree."""
    spec = doc["spec"]
    conf = spec.get("sparkConf", {}) | {f"spark.hadoop.{k}": v for k, v in spec.get("hadoopConf", {}).items()}
    errs = [
        f"sparkConf.{k}: looks like a credential ({p}); use the service account or a mounted Secret"
        for k, v in conf.items()
        for p in _secret_patterns()
        if fnmatch.fnmatch(f"{k}={v}".lower(), p)
    ]
    if conf.get("spark.ui.prometheus.enabled") != "true":
        errs.append('sparkConf.spark.ui.prometheus.enabled must be "true" (executor metrics in Prometheus format)')
    metrics = _image_path(conf.get("spark.metrics.conf", ""))
    if metrics is None or not metrics.is_file():
        return errs + [f"sparkConf.spark.metrics.conf: {conf.get('spark.metrics.conf')!r} is no file of the image"]
    rel = str(metrics.relative_to(ROOT))
    if not _copied_into_spark_image(rel):
        errs.append(f"sparkConf.spark.metrics.conf: deploy/Dockerfile.spark does not COPY {rel}")
    props = dict(line.split("=", 1) for line in metrics.read_text().splitlines() if "=" in line and not line.startswith("#"))
    if props.get("*.sink.prometheusServlet.class") != "org.apache.spark.metrics.sink.PrometheusServlet":
        errs.append(f"{rel}: no *.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet")
    notes = spec["driver"].get("annotations", {})
    if notes.get("prometheus.io/scrape") == "true":
        path = props.get("*.sink.prometheusServlet.path", "")
        if notes.get("prometheus.io/path", "").rstrip("/") != path.rstrip("/"):
            errs.append(f"driver.annotations.prometheus.io/path {notes.get('prometheus.io/path')!r} != {rel}'s {path!r}")
        if notes.get("prometheus.io/port") != conf.get("spark.ui.port", "4040"):
            errs.append(f"driver.annotations.prometheus.io/port {notes.get('prometheus.io/port')!r} is not the UI port")
    return errs


def _pin(package: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.split("==", 1)[1].split(";")[0].strip()
    raise AssertionError(f"constraints.txt pins no {package}")


def _under(path: str, mounts: list[str]) -> bool:
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


WRITTEN_ENV = ("FLAGSHIP_OUTPUTS", "PREFECT_HOME")  # folders the job writes to, named by the container's environment


def cronjob_rule_errors(doc: dict) -> list[str]:
    """The forecast-job image, non-root as the image's USER, read-only root with every written path on a volume."""
    errs, pod = [], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    _, image = forecast_job_build()
    if c["image"] != image:
        errs.append(f"containers.0.image: {c['image']!r} is not the forecast-job image built above ({image})")
    uid = re.findall(r"^USER\s+(\d+)", SPARK_DOCKERFILE.read_text(encoding="utf-8"), flags=re.M)[-1]
    if str(pod.get("securityContext", {}).get("runAsUser")) != uid or not pod["securityContext"].get("runAsNonRoot"):
        errs.append(f"securityContext: runAsNonRoot with runAsUser {uid} (deploy/Dockerfile.spark's USER)")
    sc = c.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities", {}).get("drop") != ["ALL"]:
        errs.append("containers.0.securityContext: allowPrivilegeEscalation false and capabilities.drop [ALL]")
    if sc.get("readOnlyRootFilesystem") is not True:
        errs.append("containers.0.securityContext.readOnlyRootFilesystem must be true")
    mounts = [m["mountPath"] for m in c.get("volumeMounts", []) if not m.get("readOnly")]
    env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
    written = {"/tmp": "Spark's local dir, JVM and Python temp files", **{env[k]: k for k in env if k in WRITTEN_ENV}}
    for path, why in written.items():
        if not _under(path, mounts):
            errs.append(f"containers.0: {path} ({why}) is on the read-only root filesystem; mount a volume there")
    master = re.fullmatch(r"local\[(\d+)\]", env.get("SPARK_MASTER", ""))
    cpus = c.get("resources", {}).get("limits", {}).get("cpu")
    if master is None or cpus is None or int(master.group(1)) > _quantity_bytes(str(cpus)):
        errs.append(f"SPARK_MASTER {env.get('SPARK_MASTER')!r} should be local[N] with N <= the cpu limit {cpus}")
    return errs


def code_schedule() -> tuple[str, str]:
    """Return (cron, timezone) of the re-forecast schedule defined in code."""
    from flagship.forecasting.reforecast import SCHEDULE_CRON, SCHEDULE_TIMEZONE

    return SCHEDULE_CRON, SCHEDULE_TIMEZONE


CRON_FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"


def schedule_errors(doc: dict, cron: str, tz: str) -> list[str]:
    spec, errs = doc["spec"], []
    fields = str(spec.get("schedule", "")).split()
    if len(fields) != 5 or not all(re.fullmatch(CRON_FIELD, f) for f in fields):
        errs.append(f"spec.schedule {spec.get('schedule')!r} is not a 5-field cron expression")
    if spec.get("schedule") != cron:
        errs.append(f"spec.schedule {spec.get('schedule')!r} != the code's {cron!r}")
    if spec.get("timeZone") != tz:
        errs.append(f"spec.timeZone {spec.get('timeZone')!r} != the code's {tz!r}")
    return errs


# ================================================================= tests: the CronJob
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_cronjob_matches_the_kubernetes_schema(version):
    assert k8s_errors(load(CRONJOB), version) == []


POD = "spec.jobTemplate.spec.template.spec"


@pytest.mark.parametrize(
    "path,value,fragment",
    [
        ("spec.jobTemplate.spec.backoffLimit", "one", "backoffLimit: 'one' is not of type 'integer'"),
        (f"{POD}.containers.0.securityContext.readOnlyRootFS", True, "Additional properties are not allowed"),
        (f"{POD}.containers.0.name", DELETE, "'name' is a required property"),
        (f"{POD}.containers.0.env.0.value", 1, "env.0.value: 1 is not of type"),
        ("spec.timeZone", ["UTC"], "timeZone: ['UTC'] is not of type"),
    ],
)
def test_cronjob_schema_rejects_broken_copies(path, value, fragment):
    errors = k8s_errors(mutated(load(CRONJOB), path, value), K8S_VERSIONS[-1])
    assert any(fragment in e for e in errors), errors


def test_cronjob_schedule_is_the_code_schedule():
    cron, tz = code_schedule()
    doc = load(CRONJOB)
    assert schedule_errors(doc, cron, tz) == []
    assert schedule_errors(mutated(doc, "spec.schedule", "0 6 13 * *"), cron, tz) == [
        f"spec.schedule '0 6 13 * *' != the code's {cron!r}"
    ]
    assert any("5-field" in e for e in schedule_errors(mutated(doc, "spec.schedule", "monthly"), cron, tz))
    assert any("timeZone" in e for e in schedule_errors(mutated(doc, "spec.timeZone", "Europe/Paris"), cron, tz))


def test_cronjob_command_is_a_flagship_reforecast_call():
    from flagship.cli import _parser

    container = load(CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"] + container["args"]
    assert command[:2] == ["tini", "--"] and command[2] == "flagship", command  # the console script, under tini
    args = _parser().parse_args(command[3:])
    assert args.command == "reforecast" and args.out and args.out.startswith("/data/") and not args.serve


def test_cronjob_runs_the_forecast_job_image_with_a_read_only_root():
    doc = load(CRONJOB)
    assert cronjob_rule_errors(doc) == []
    c = f"{POD}.containers.0"
    cases = {
        f"{c}.image": ("ghcr.io/flagship/spark:0.1.0", "is not the forecast-job image"),
        f"{c}.securityContext.readOnlyRootFilesystem": (False, "readOnlyRootFilesystem must be true"),
        f"{c}.volumeMounts.1": (DELETE, "/tmp (Spark's local dir"),
        f"{c}.env.3.value": ("/opt/flagship/prefect", "/opt/flagship/prefect (PREFECT_HOME)"),
        f"{c}.env.1.value": ("local[*]", "SPARK_MASTER 'local[*]'"),
        f"{POD}.securityContext.runAsUser": (0, "runAsNonRoot with runAsUser 10001"),
    }
    assert [e["name"] for e in doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]][3] == (
        "PREFECT_HOME"
    )
    for path, (value, fragment) in cases.items():
        errors = cronjob_rule_errors(mutated(doc, path, value))
        assert any(fragment in e for e in errors), (path, errors)


# ================================================================= tests: the SparkApplication
def test_spark_application_matches_the_operator_schema():
    assert spark_app_errors(load(SPARKAPP)) == []


@pytest.mark.parametrize(
    "path,value,fragment",
    [
        ("spec.executor.instances", "2", "spec.executor.instances: '2' is not of type 'integer'"),
        ("spec.driver.coreLimitt", "1200m", "Additional properties are not allowed ('coreLimitt' was unexpected)"),
        ("spec.mode", "local", "spec.mode: 'local' is not one of"),
        ("spec.mainApplicationFile", DELETE, "'mainApplicationFile' is a required property"),
        ("spec.driver.securityContext.runAsNonRoot", "yes", "runAsNonRoot: 'yes' is not of type 'boolean'"),
        ("spec.restartPolicy.onFailureRetryInterval", 0, "onFailureRetryInterval: 0 is less than the minimum of 1"),
        ("spec.sparkConf.spark.sql.shuffle.partitions", 64, "spark.sql.shuffle.partitions: 64 is not of type 'string'"),
        ("apiVersion", "sparkoperator.k8s.io/v1beta1", "apiVersion: 'sparkoperator.k8s.io/v1beta2' was expected"),
    ],
)
def test_spark_application_schema_rejects_broken_copies(path, value, fragment):
    doc = load(SPARKAPP)
    if path.startswith("spec.sparkConf."):  # sparkConf keys contain dots: set the key directly
        doc = copy.deepcopy(doc)
        doc["spec"]["sparkConf"][path.removeprefix("spec.sparkConf.")] = value
    else:
        doc = mutated(doc, path, value)
    errors = spark_app_errors(doc)
    assert any(fragment in e for e in errors), errors


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_spark_application_pod_fields_match_kubernetes_core(version):
    doc = load(SPARKAPP)
    parts = [(doc["metadata"], "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")]
    for role in ("driver", "executor"):
        parts.append((doc["spec"][role]["securityContext"], "io.k8s.api.core.v1.SecurityContext"))
    for obj, definition in parts:
        assert k8s_errors(obj, version, definition) == [], definition
    bad = dict(doc["spec"]["driver"]["securityContext"], runAsUser="10001", readOnly=True)
    errors = k8s_errors(bad, version, "io.k8s.api.core.v1.SecurityContext")
    assert any("runAsUser: '10001' is not of type" in e for e in errors), errors
    assert any("'readOnly' was unexpected" in e for e in errors), errors


def test_spark_application_conf_follows_the_repository_rules():
    doc = load(SPARKAPP)
    assert spark_conf_errors(doc) == []
    conf = {
        "spark.hadoop.fs.s3a.secret.key": ("x", "looks like a credential"),
        "spark.jdbc.password": ("x", "looks like a credential"),
        "spark.ui.prometheus.enabled": (DELETE, "spark.ui.prometheus.enabled must be"),
        "spark.metrics.conf": ("/opt/flagship/deploy/spark/missing.properties", "is no file of the image"),
        "spark.ui.port": ("4041", "is not the UI port"),
    }
    for key, (value, fragment) in conf.items():
        bad = copy.deepcopy(doc)
        if value is DELETE:
            del bad["spec"]["sparkConf"][key]
        else:
            bad["spec"]["sparkConf"][key] = value
        assert any(fragment in e for e in spark_conf_errors(bad)), (key, spark_conf_errors(bad))
    bad = copy.deepcopy(doc)  # annotation keys contain dots: set the key directly
    bad["spec"]["driver"]["annotations"]["prometheus.io/path"] = "/metrics/"
    assert any("prometheus.io/path" in e for e in spark_conf_errors(bad)), spark_conf_errors(bad)


def test_spark_application_runs_what_the_image_has(monkeypatch):
    spec = load(SPARKAPP)["spec"]
    assert spec["sparkVersion"] == _pin("pyspark"), "sparkVersion should be the pyspark that constraints.txt pins"
    main = _image_path(spec["mainApplicationFile"])
    assert main is not None and main.is_file(), spec["mainApplicationFile"]
    assert _copied_into_spark_image(str(main.relative_to(ROOT))), f"deploy/Dockerfile.spark does not COPY {main}"
    assert "ghcr.io/flagship/spark:" in spec["image"], spec["image"]  # the image built from deploy/Dockerfile.spark
    # The job's own argument parser accepts the manifest's arguments (run_feature_job stubbed: no Spark, no data).
    from flagship.forecasting import features

    calls = []
    monkeypatch.setattr(features, "get_spark", lambda *a, **k: None)
    monkeypatch.setattr(features, "run_feature_job", lambda *a: calls.append(a) or {})
    monkeypatch.setattr(features, "print", lambda *a, **k: None, raising=False)
    features.main(spec["arguments"])
    (args,) = calls
    for value in args[:3]:  # input, output, schema: local paths must exist in the image
        if isinstance(value, str) and value.startswith("/"):
            local = _image_path(value)
            assert local is not None and local.exists(), f"{value} is not in the image"
            assert _copied_into_spark_image(str(local.relative_to(ROOT))), f"deploy/Dockerfile.spark does not COPY {value}"
    with pytest.raises(SystemExit):
        features.main([*spec["arguments"], "--partitions", "eight"])


@pytest.mark.parametrize("path", [CRONJOB, SPARKAPP], ids=lambda p: p.name)
def test_api_server_rules(path):
    doc = load(path)
    assert api_rule_errors(doc) == []
    long = "x" * 64
    cases = [
        ("metadata.name", "Forecasting_Reforecast", "is not a DNS-1123 subdomain"),
        ("metadata.labels.flagship/project", long, "label value"),
        ("metadata.labels.bad key", "x", "is not a qualified name"),
    ]
    if doc["kind"] == "CronJob":
        cases += [
            ("metadata.name", "forecasting-reforecast-" + "x" * 30, "longer than 52"),
            ("spec.concurrencyPolicy", "Never", "is not one of ['Allow', 'Forbid', 'Replace']"),
            (f"{POD}.containers.0.volumeMounts.0.name", "outputs", "names no volume of the pod"),
            (f"{POD}.containers.0.resources.requests.memory", "8Gi", "exceeds its limit"),
            (f"{POD}.containers.0.resources.limits.memory", "6 GB", "is not a Kubernetes quantity"),
            (f"{POD}.volumes.1.emptyDir.sizeLimit", "4GB!", "is not a Kubernetes quantity"),
            (f"{POD}.restartPolicy", "Always", "restartPolicy must be Never or OnFailure"),
        ]
    else:
        cases += [("spec.imagePullPolicy", "Sometimes", "is not one of ['Always', 'IfNotPresent', 'Never']")]
    for where, value, fragment in cases:
        errors = api_rule_errors(mutated(doc, where, value))
        assert any(fragment in e for e in errors), (where, errors)


@pytest.mark.slow
def test_spark_submit_settings_reach_the_job(tmp_path):
    """spark-submit (what the Spark Operator runs in the driver pod) with the manifest's sparkConf and the driver
    settings Kubernetes cluster mode adds; the job's get_spark must keep them, and keep the UI the metrics need."""
    spec = load(SPARKAPP)["spec"]
    conf = {k: str(_image_path(v) or v) for k, v in spec["sparkConf"].items()}  # the image's paths, here
    conf |= {"spark.driver.host": "localhost", "spark.driver.bindAddress": "localhost", "spark.ui.port": str(free_port())}
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, sys\nfrom flagship.core.spark import get_spark\nspark = get_spark('probe')\n"
        "conf = dict(spark.sparkContext.getConf().getAll())\n"
        "print('PROBE ' + json.dumps({k: conf.get(k) for k in sys.argv[1:]}))\nspark.stop()\n"
    )
    cmd = [str(BIN / "spark-submit"), "--master", "local[1]"]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("FLAGSHIP_SPARK_UI", None)
    run = subprocess.run([*cmd, str(probe), *conf, "spark.ui.enabled"], capture_output=True, text=True, env=env, timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("PROBE ")), None)
    assert line, run.stderr[-3000:]
    seen = json.loads(line.removeprefix("PROBE "))
    lost = {k: f"{v} -> {seen[k]}" for k, v in conf.items() if seen[k] != v}
    if seen["spark.ui.enabled"] == "false":
        lost["spark.ui.enabled"] = "the UI that serves /metrics/prometheus/ was turned off"
    assert not lost, f"settings get_spark changed under spark-submit: {lost}"
