"""``deploy --target kserve``: the two InferenceService manifests of one run, rendered from ``manifests/``.

Each pair is one InferenceService (KServe v1beta1, v1 protocol): ``recommender`` (query transformer → query
predictor, the public endpoint) and ``ranking`` (ranking transformer → ranking predictor). All four containers run
the same image (``manifests/Dockerfile``), whose entry point :mod:`recsys.serving.container` picks the server from
its first argument. Every container is pinned to one run (``--run`` and ``RECSYS_SERVING_RUN_ID``), so a cluster
never mixes the models of two runs, and reads the store from ``RECSYS_HOME``: a volume (``pvc://claim[/path]``)
holding the embedded backend, or, with ``backend=hopsworks``, the ``HOPSWORKS_*`` variables of a Secret.

The templates are plain YAML with ``${field}`` placeholders (:class:`string.Template`), readable and diffable as
files; rendering substitutes JSON (a subset of YAML) for the structured fields, and every placeholder must have
a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from recsys.errors import RecsysError
from recsys.serving.model_set import QUERY_SERVICE, RANKING_SERVICE

MANIFESTS = Path(__file__).parent / "manifests"
TEMPLATES = {QUERY_SERVICE: "recommender.yaml", RANKING_SERVICE: "ranking.yaml"}
DOCKERFILE = MANIFESTS / "Dockerfile"
DEFAULT_IMAGE = "recsys-serving:latest"
DEFAULT_STORAGE_URI = "pvc://recsys-home"
MOUNT = "/mnt/recsys"
HOPSWORKS_SECRET = "recsys-hopsworks"  # optional Secret with HOPSWORKS_API_KEY, HOPSWORKS_HOST, HOPSWORKS_PROJECT
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


class DeployError(RecsysError):
    """A deployment setting is invalid (the message names it)."""


@dataclass(frozen=True)
class KServeConfig:
    """What the manifests of one run need."""

    run_id: str
    image: str = DEFAULT_IMAGE
    namespace: str = "recsys"
    storage_uri: str = DEFAULT_STORAGE_URI
    backend: str = "local"
    deployment_mode: str = "Serverless"  # or RawDeployment (no Knative)
    ranking_url: str | None = None  # default: the ranking InferenceService inside the cluster

    def __post_init__(self) -> None:
        if not _LABEL_VALUE.match(self.run_id):
            raise DeployError(
                f"run_id {self.run_id!r} is not a Kubernetes label value (63 chars: letters, digits, -_.)"
            )
        if not _DNS_LABEL.match(self.namespace):
            raise DeployError(f"namespace {self.namespace!r} must be a DNS label (lowercase letters, digits, -)")
        if not _IMAGE.match(self.image):
            raise DeployError(f"image {self.image!r} is not an image reference")
        if self.backend not in ("local", "hopsworks"):
            raise DeployError(f"backend {self.backend!r}: expected local or hopsworks")
        if self.deployment_mode not in ("Serverless", "RawDeployment"):
            raise DeployError(f"deployment_mode {self.deployment_mode!r}: expected Serverless or RawDeployment")
        _claim(self.storage_uri)

    @property
    def ranking_endpoint(self) -> str:
        return self.ranking_url or f"http://{RANKING_SERVICE}.{self.namespace}.svc.cluster.local"


def _claim(storage_uri: str) -> tuple[str, str]:
    """``pvc://claim[/sub/path]`` → (claim, sub path)."""
    if not storage_uri.startswith("pvc://") or not storage_uri[len("pvc://") :].split("/")[0]:
        raise DeployError(
            f"storage_uri {storage_uri!r}: expected pvc://CLAIM[/PATH], a volume claim holding RECSYS_HOME"
        )
    name, _, sub_path = storage_uri[len("pvc://") :].partition("/")
    if not _DNS_LABEL.match(name):
        raise DeployError(f"storage_uri: claim name {name!r} must be a DNS label")
    return name, sub_path.strip("/")


def container_env(config: KServeConfig) -> list[dict[str, object]]:
    """The environment of every container: the pinned run, the store, the thread caps of a small server."""
    env: list[dict[str, object]] = [
        {"name": "RECSYS_SERVING_RUN_ID", "value": config.run_id},
        {"name": "RECSYS_BACKEND", "value": config.backend},
        {"name": "RECSYS_HOME", "value": MOUNT},
    ]
    if config.backend == "hopsworks":
        for key in ("HOPSWORKS_API_KEY", "HOPSWORKS_HOST", "HOPSWORKS_PROJECT"):
            ref = {"secretKeyRef": {"name": HOPSWORKS_SECRET, "key": key, "optional": key != "HOPSWORKS_API_KEY"}}
            env.append({"name": key, "valueFrom": ref})
    return env


def render(config: KServeConfig) -> dict[str, str]:
    """File name → rendered manifest, for both InferenceServices."""
    name, sub_path = _claim(config.storage_uri)
    mount: dict[str, object] = {"name": "recsys-home", "mountPath": MOUNT}
    if sub_path:
        mount["subPath"] = sub_path
    values = {
        "run_id": config.run_id,
        "image": config.image,
        "namespace": config.namespace,
        "deployment_mode": config.deployment_mode,
        "ranking_url": config.ranking_endpoint,
        "env": json.dumps(container_env(config)),
        "volume_mounts": json.dumps([mount]),
        "volumes": json.dumps([{"name": "recsys-home", "persistentVolumeClaim": {"claimName": name}}]),
    }
    out = {}
    for file in TEMPLATES.values():
        try:
            out[file] = Template((MANIFESTS / file).read_text()).substitute(values)
        except (KeyError, ValueError) as exc:
            raise DeployError(f"{MANIFESTS / file}: a placeholder has no value or is malformed ({exc})") from None
    return out


def write_manifests(config: KServeConfig, folder: Path) -> list[Path]:
    """Render both manifests into ``folder`` (created); returns the written paths, ranking first."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file, text in sorted(render(config).items(), key=lambda item: item[0] != TEMPLATES[RANKING_SERVICE]):
        path = folder / file
        path.write_text(text)
        written.append(path)
    return written


def kubectl_commands(config: KServeConfig, folder: Path) -> list[str]:
    """What to run next: build and push the image, apply ranking then recommender, wait, find the URL."""
    ns = config.namespace
    files = [folder / TEMPLATES[RANKING_SERVICE], folder / TEMPLATES[QUERY_SERVICE]]
    return [
        f"docker build -f {DOCKERFILE.relative_to(MANIFESTS.parents[2])} -t {config.image} . "
        f"&& docker push {config.image}",
        f"kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -",
        *(f"kubectl apply -f {path}" for path in files),
        f"kubectl wait -n {ns} --for=condition=Ready inferenceservice/{RANKING_SERVICE} "
        f"inferenceservice/{QUERY_SERVICE} --timeout=10m",
        f"kubectl get inferenceservice {QUERY_SERVICE} -n {ns} -o jsonpath='{{.status.url}}'",
    ]
