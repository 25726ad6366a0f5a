"""Deployment: prefect.yaml against Prefect's own model (no silently dropped keys), every deployment's Job
manifest rendered offline and validated against the Kubernetes schemas, the Dockerfile read for what matters,
and `prefect --no-prompt deploy --all` against a real local Prefect API with a Kubernetes work pool."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
TEMPLATE = json.loads((ROOT / "deploy" / "base-job-template.json").read_text())
RESOURCES = {"backfill": ("1", "2", "2Gi", "4Gi"), "regular": ("500m", "1", "1Gi", "2Gi")}
IMAGE = "registry.example.com/ai-log-analyzer:9.9.9"


def _unknown_keys(data, model, path="") -> list[str]:
    """Keys in the YAML that the pydantic model would silently ignore."""
    from pydantic import BaseModel

    out = []
    if isinstance(data, dict) and isinstance(model, type) and issubclass(model, BaseModel):
        fields = {name: f for name, f in model.model_fields.items()}
        aliases = {f.alias: name for name, f in fields.items() if f.alias}
        for key, value in data.items():
            name = aliases.get(key, key.replace("-", "_"))
            if name not in fields:
                out.append(f"{path}{key}")
                continue
            annotation = fields[name].annotation
            for sub in getattr(annotation, "__args__", ()) + (annotation,):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    out += _unknown_keys(value, sub, f"{path}{key}.")
                elif getattr(sub, "__origin__", None) is list and isinstance(value, list):
                    inner = sub.__args__[0]
                    for item_type in getattr(inner, "__args__", ()) + (inner,):
                        if isinstance(item_type, type) and issubclass(item_type, BaseModel):
                            for i, item in enumerate(value):
                                out += _unknown_keys(item, item_type, f"{path}{key}[{i}].")
    return out


def test_prefect_yaml_is_valid_and_has_no_silently_dropped_keys():
    from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel

    model = PrefectYamlModel.model_validate(PREFECT_YAML)
    assert {d.name for d in model.deployments} == {"backfill", "backfill-rerun", "backfill-day", "regular", "regular-rerun",
                                                       "publish"}
    unknown = []
    for i, dep in enumerate(PREFECT_YAML["deployments"]):
        unknown += _unknown_keys(dep, DeploymentConfig, f"deployments[{i}].")
    assert unknown == []
    # a typo would be caught
    assert _unknown_keys({"name": "x", "concurency_limit": 1}, DeploymentConfig) == ["concurency_limit"]
    regular = next(d for d in PREFECT_YAML["deployments"] if d["name"] == "regular")
    assert regular["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert regular["schedules"][0]["cron"] == "5-59/15 * * * *"
    assert all(s.get("timezone") for d in PREFECT_YAML["deployments"] for s in d.get("schedules", []))


def _render(deployment: dict) -> dict:
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.templating import apply_values
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    os.environ["AILOG_IMAGE"] = IMAGE  # what `AILOG_IMAGE=... prefect deploy --all` resolves
    values = apply_values(dict(deployment["work_pool"]["job_variables"]), {}, remove_notset=False)
    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(TEMPLATE, values))
    os.environ.setdefault("PREFECT_API_KEY", "pk_never_in_a_manifest")
    flow_run = FlowRun(id=uuid.uuid4(), name="proud-otter", flow_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    config.prepare_for_flow_run(flow_run)
    return config.job_manifest


@pytest.mark.parametrize("deployment", PREFECT_YAML["deployments"], ids=lambda d: d["name"])
def test_job_manifests_render_and_validate_against_kubernetes_schemas(deployment, monkeypatch):
    monkeypatch.setenv("PREFECT_API_KEY", "pk_secret_value_123")
    manifest = _render(deployment)
    kubernetes_validate.validate(manifest, "1.30", strict=True)
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert manifest["spec"]["parallelism"] == 1 and "parallelism" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]
    assert {"secretRef": {"name": "ailog-secrets"}} in container["envFrom"]
    assert manifest["spec"]["ttlSecondsAfterFinished"] == deployment["work_pool"]["job_variables"]["finished_job_ttl"]
    base = deployment["name"].split("-")[0]
    if base in RESOURCES:
        cpu_req, cpu_lim, mem_req, mem_lim = RESOURCES[base]
        assert container["resources"] == {"requests": {"cpu": cpu_req, "memory": mem_req},
                                          "limits": {"cpu": cpu_lim, "memory": mem_lim}}
    # Prefect owns retries: Kubernetes never starts a second pod for the same flow run
    assert manifest["spec"]["backoffLimit"] == 0
    assert container["image"] == IMAGE, "the image comes from AILOG_IMAGE via prefect.yaml, nowhere else"
    # Kubernetes' deadline is a last resort above the flow's own timeout
    module, attr = deployment["entrypoint"].split(":")
    flow_timeout = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), attr).timeout_seconds
    assert flow_timeout and flow_timeout < manifest["spec"]["activeDeadlineSeconds"] <= flow_timeout + 1800
    assert "pk_secret_value_123" not in json.dumps(manifest)


def test_dockerfile_matches_the_deployment():
    text = (ROOT / "Dockerfile").read_text()
    workdir = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)
    pull = PREFECT_YAML["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert workdir == [pull]
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", text, re.M), "base image pinned to a patch version"
    assert re.search(r"^USER 10001", text, re.M) and "ENTRYPOINT" not in text.replace("No ENTRYPOINT", "")
    deps, code = text.index("COPY pyproject.toml"), text.index("COPY ailog")
    assert deps < text.index("pip install .") < code, "dependencies are installed in their own cached layer"
    assert "10001" in json.dumps(TEMPLATE)  # the pod runs as the image's user
    assert TEMPLATE["variables"]["properties"]["image"]["default"] is None, "no image hidden in the work pool"
    assert re.search(r"AILOG_REPORTS_DIR=/tmp/", text), "reports default to the pod's writable /tmp"
    # the per-event modules are compiled (setup.py), sit in the working directory the flows import from (every
    # package's .so under tasks/, paths kept), and the build checks that those are the ones imported
    build = text[text.index("COPY setup.py"):text.index("USER 10001")]
    assert "gcc" in build and "pip install --no-deps ." in build and "find tasks -name '*.so'" in build
    assert "cp --parents {} /opt/ailog/" in build
    assert "endswith('.so')" in build and "startswith('/opt/ailog/')" in build
    assert all(f"tasks.{m} as" in build for m in ("grouping.engine", "scrubbing", "source.documents", "event_rows"))


def test_deploy_all_to_a_local_prefect_server(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path)}
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "prefect"), "--no-prompt", "work-pool", "create", "ailog-kubernetes", "--type",
                    "kubernetes", "--base-job-template", str(ROOT / "deploy" / "base-job-template.json"),
                    "--overwrite"], env=env, check=True, capture_output=True, timeout=180)
    for _ in range(2):  # repeatable
        out = subprocess.run([str(bin_dir / "prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    async def read():
        async with get_client() as client:
            return {d.name: d for d in await client.read_deployments()}

    deployments = asyncio.run(read())
    assert {"backfill", "backfill-rerun", "backfill-day", "regular", "regular-rerun", "publish"} <= set(deployments)
    regular = deployments["regular"]
    limit = regular.concurrency_limit or getattr(regular.global_concurrency_limit, "limit", None)
    assert limit == 1
    assert regular.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert regular.schedules[0].schedule.cron == "5-59/15 * * * *"
    backfill_params = deployments["backfill-rerun"].parameter_openapi_schema["properties"]
    assert backfill_params["days"]["type"] == "integer" and backfill_params["days"]["minimum"] == 1
    # the Prefect UI's run form explains every parameter; a single day is one parameter
    for name in ("day", "start", "end", "dry_run", "publish", "output_dir"):
        assert backfill_params[name].get("description"), name
    regular_params = deployments["regular-rerun"].parameter_openapi_schema["properties"]
    assert regular_params["at"].get("description") and regular_params["window"]["maximum"] == 60
    assert deployments["publish"].parameter_openapi_schema["properties"]["day"].get("description")
    assert all(d.enforce_parameter_schema for d in deployments.values())
    assert deployments["publish"].schedules[0].active is False


def test_shipped_kubernetes_manifests_are_valid():
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for manifest in yaml.safe_load_all(path.read_text()):
            if manifest:
                kubernetes_validate.validate(manifest, "1.30", strict=True)
