"""Deployment artefacts: the KServe manifests (checked against KServe's and Kubernetes' own API types), the
serving image's entry point, and the Hopsworks path against the SDK's real classes and signatures."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recsys.serving import deploy
from recsys.serving.deploy import DeployError, KServeConfig, render, write_manifests
from recsys.serving.hopsworks_scripts import SCRIPTS

RUN = "run-20991231T235959Z-abc123"
ROOT = Path(__file__).resolve().parents[3]


# -- a structural schema check against the generated API models -------------------------------------------------


def _model_class(name: str) -> type:
    import kserve
    import kubernetes.client

    return getattr(kserve, name) if name.startswith("V1beta1") else getattr(kubernetes.client, name)


def check_schema(value: Any, type_name: str, path: str = "$") -> None:
    """Every key of ``value`` is a field of the API type ``type_name`` (KServe v1beta1 / Kubernetes core), with a
    value of the field's kind, recursively: what the API server's schema validation would reject, offline."""
    if type_name.lower().startswith("list["):  # the generators spell it list[X] or List[X]
        assert isinstance(value, list), f"{path}: expected a list"
        for i, item in enumerate(value):
            check_schema(item, type_name[5:-1], f"{path}[{i}]")
    elif type_name.lower().startswith(("dict(", "dict[")):
        assert isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), f"{path}: str map"
    elif type_name in ("str", "int", "bool", "float"):
        assert isinstance(value, {"str": str, "int": int, "bool": bool, "float": (int, float)}[type_name]), path
    elif type_name == "object":
        assert value is not None, path
    else:
        cls = _model_class(type_name)
        assert isinstance(value, dict), f"{path}: expected an object ({type_name})"
        fields = {camel: snake for snake, camel in cls.attribute_map.items()}
        unknown = sorted(set(value) - set(fields))
        assert not unknown, f"{path}: {type_name} has no field(s) {unknown}"
        for key, item in value.items():
            check_schema(item, cls.openapi_types[fields[key]], f"{path}.{key}")


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    config = KServeConfig(run_id=RUN, image="registry.example/recsys:1.0", namespace="shop")
    return {name: yaml.safe_load(text) for name, text in render(config).items()}


def test_both_pairs_are_inference_services_of_the_schema(manifests: dict[str, dict[str, Any]]) -> None:
    assert set(manifests) == {"recommender.yaml", "ranking.yaml"}
    for doc in manifests.values():
        assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
        check_schema(doc, "V1beta1InferenceService")
        assert doc["metadata"]["namespace"] == "shop"
        assert doc["metadata"]["labels"]["recsys/run-id"] == RUN


@pytest.mark.parametrize(
    ("file", "service", "roles"),
    [
        ("recommender.yaml", "recommender", {"transformer": "query_transformer", "predictor": "query_predictor"}),
        ("ranking.yaml", "ranking", {"transformer": "ranking_transformer", "predictor": "ranking_predictor"}),
    ],
)
def test_each_container_runs_its_server_for_the_run(
    manifests: dict[str, dict[str, Any]], file: str, service: str, roles: dict[str, str]
) -> None:
    doc = manifests[file]
    assert doc["metadata"]["name"] == service  # KServe names the model route after it: /v1/models/<service>
    for component, role in roles.items():
        spec = doc["spec"][component]
        (container,) = spec["containers"]
        assert container["image"] == "registry.example/recsys:1.0"
        assert container["args"][:3] == [role, "--run", RUN]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["RECSYS_SERVING_RUN_ID"] == RUN and env["RECSYS_HOME"] == deploy.MOUNT
        assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound])
        assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{service}", "port": 8080}
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert mounts <= {v["name"] for v in spec["volumes"]}
        assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "recsys-home"
    if service == "recommender":  # the query transformer calls the ranking service inside the cluster
        args = doc["spec"]["transformer"]["containers"][0]["args"]
        assert args[args.index("--ranking_url") + 1] == "http://ranking.shop.svc.cluster.local"


def test_hopsworks_backend_takes_the_key_from_a_secret() -> None:
    text = render(KServeConfig(run_id=RUN, backend="hopsworks", storage_uri="pvc://data/stores/recsys"))
    container = yaml.safe_load(text["ranking.yaml"])["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["RECSYS_BACKEND"]["value"] == "hopsworks"
    assert env["HOPSWORKS_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == deploy.HOPSWORKS_SECRET
    assert "value" not in env["HOPSWORKS_API_KEY"]  # never the key itself in a manifest
    assert container["volumeMounts"][0]["subPath"] == "stores/recsys"


@pytest.mark.parametrize(
    ("field", "value"),
    [("run_id", "run id with spaces"), ("namespace", "Shop_NS"), ("image", "bad image"), ("storage_uri", "s3://x")],
)
def test_bad_settings_name_the_field(field: str, value: str) -> None:
    with pytest.raises(DeployError, match=field):
        KServeConfig(**{"run_id": RUN, field: value})


def test_written_files_and_commands(tmp_path: Path) -> None:
    config = KServeConfig(run_id=RUN)
    paths = write_manifests(config, tmp_path / "out")
    assert [p.name for p in paths] == ["ranking.yaml", "recommender.yaml"]  # ranking first: the query pair calls it
    commands = deploy.kubectl_commands(config, tmp_path / "out")
    assert any(c.startswith("docker build -f recsys/serving/manifests/Dockerfile") for c in commands)
    applied = [c for c in commands if c.startswith("kubectl apply -f")]
    assert applied == [f"kubectl apply -f {p}" for p in paths]


# -- the serving image ---------------------------------------------------------------------------------------


def test_dockerfile_runs_an_existing_entry_point_with_the_manifest_arguments(
    manifests: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = deploy.DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry[:2] == ["python", "-m"]
    module = importlib.import_module(entry[2])
    assert hasattr(module, "main")
    for source in re.findall(r"^COPY (\S+)", text, re.M):
        assert all((ROOT / part).exists() for part in source.split()), source  # what the build copies exists

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    container = manifests["recommender.yaml"]["spec"]["transformer"]["containers"][0]
    injected = ["--model_name=recommender", "--predictor_host=recommender-predictor.shop", "--http_port=8080"]
    spec = module.spec_from_args([*container["args"], *injected])  # as KServe starts a transformer container
    assert (spec.role, spec.run_id, spec.port) == ("query_transformer", RUN, 8080)
    assert spec.predictor_host == "recommender-predictor.shop"
    assert spec.ranking_url == "http://ranking.shop.svc.cluster.local"
    predictor = module.spec_from_args(manifests["recommender.yaml"]["spec"]["predictor"]["containers"][0]["args"])
    assert (predictor.role, predictor.predictor_host) == ("query_predictor", None)
    with pytest.raises(SystemExit):  # a transformer without its predictor is refused at start
        module.spec_from_args(["ranking_transformer", "--run", RUN])


# -- Hopsworks: the SDK's own classes, offline --------------------------------------------------------------------


def _checked(method: Any, *args: Any, **kwargs: Any) -> inspect.BoundArguments:
    """The call bound to the real SDK method's signature (a TypeError if the SDK has no such arguments)."""
    return inspect.signature(method).bind(None, *args, **kwargs)


class Calls:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []

    def add(self, name: str, bound: inspect.BoundArguments) -> None:
        self.log.append((name, {k: v for k, v in bound.arguments.items() if k != "self"}))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [args for n, args in self.log if n == name]


def offline_project(calls: Calls, existing: dict[str, Any] | None = None) -> Any:
    """A project handle exposing the SDK methods deploy uses: real hsml objects where they build offline
    (``ModelServing``, ``Transformer``, ``Model``), recorded calls where they would reach the cluster."""
    from hopsworks_common.core.dataset_api import DatasetApi
    from hsml.deployment import Deployment
    from hsml.model import Model
    from hsml.model_registry import ModelRegistry
    from hsml.model_serving import ModelServing

    class FakeDeployment:
        def __init__(self, name: str) -> None:
            self.name = name

        def start(self, *args: Any, **kwargs: Any) -> None:
            calls.add("start", _checked(Deployment.start, *args, **kwargs))
            calls.log[-1][1]["name"] = self.name

        def delete(self, *args: Any, **kwargs: Any) -> None:
            calls.add("delete", _checked(Deployment.delete, *args, **kwargs))
            calls.log[-1][1]["name"] = self.name

    class RecordingModel(Model):
        def deploy(self, *args: Any, **kwargs: Any) -> Any:
            calls.add("deploy", _checked(Model.deploy, *args, **kwargs))
            calls.log[-1][1]["model"] = (self.name, self.version)
            return FakeDeployment(kwargs["name"])

    class Registry:
        def get_model(self, *args: Any, **kwargs: Any) -> Model:
            bound = _checked(ModelRegistry.get_model, *args, **kwargs)
            calls.add("get_model", bound)
            return RecordingModel(id=1, name=bound.arguments["name"], version=bound.arguments["version"])

    class Serving(ModelServing):
        def get_deployment(self, *args: Any, **kwargs: Any) -> Any:
            bound = _checked(ModelServing.get_deployment, *args, **kwargs)
            calls.add("get_deployment", bound)
            name = bound.arguments["name"]
            return FakeDeployment(name) if name in (existing or {}) else None

    class Datasets:
        def mkdir(self, *args: Any, **kwargs: Any) -> str:
            calls.add("mkdir", _checked(DatasetApi.mkdir, *args, **kwargs))
            return args[0]

        def upload(self, *args: Any, **kwargs: Any) -> str:
            bound = _checked(DatasetApi.upload, *args, **kwargs)
            calls.add("upload", bound)
            return f"/Projects/shop/{bound.arguments['upload_path']}/{Path(bound.arguments['local_path']).name}"

    class Handle:
        name = "shop"

        def get_model_registry(self) -> Registry:
            return Registry()

        def get_model_serving(self) -> Serving:
            return Serving(project_name="shop", project_id=7)

        def get_dataset_api(self) -> Datasets:
            return Datasets()

    return Handle()


def test_hopsworks_deployments_are_made_with_the_sdk_calls() -> None:
    from hsml.transformer import Transformer

    from recsys.serving.hopsworks_deploy import deploy_to_hopsworks

    calls = Calls()
    names = deploy_to_hopsworks(
        offline_project(calls), RUN, {"query_tower": 3, "ranker": 5}, environment="recsys-env", log=lambda _: None
    )
    assert names == ["ranking", "recommender"]
    uploads = calls.named("upload")
    assert sorted(Path(u["local_path"]).name for u in uploads) == sorted(p.name for p in SCRIPTS.values())
    assert {u["upload_path"] for u in uploads} == {f"Resources/recsys/serving/{RUN}"} and all(
        u["overwrite"] for u in uploads
    )
    deploys = calls.named("deploy")
    assert [d["model"] for d in deploys] == [("ranker", 5), ("query_tower", 3)]
    for d, prefix in zip(deploys, ("ranking", "query"), strict=True):
        assert d["environment"] == "recsys-env" and d["api_protocol"] == "REST"
        assert d["script_file"].endswith(f"/{prefix}_predictor.py")
        assert d["env_vars"]["RECSYS_SERVING_RUN_ID"] == RUN and d["env_vars"]["RECSYS_BACKEND"] == "hopsworks"
        transformer = d["transformer"]
        assert isinstance(transformer, Transformer)  # built by the real ModelServing.create_transformer
        assert transformer.script_file.endswith(f"/{prefix}_transformer.py")
        assert transformer.env_vars["RECSYS_SERVING_RUN_ID"] == RUN and transformer.environment == "recsys-env"
    assert [s["name"] for s in calls.named("start")] == ["ranking", "recommender"]


def test_an_existing_deployment_is_replaced_only_when_asked() -> None:
    from recsys.serving.hopsworks_deploy import HopsworksDeployError, deploy_to_hopsworks

    calls = Calls()
    project = offline_project(calls, existing={"ranking": True})
    versions = {"query_tower": 1, "ranker": 1}
    with pytest.raises(HopsworksDeployError, match="'ranking' exists"):
        deploy_to_hopsworks(project, RUN, versions, log=lambda _: None)
    assert not calls.named("deploy")
    deploy_to_hopsworks(project, RUN, versions, replace=True, start=False, log=lambda _: None)
    assert [d["name"] for d in calls.named("delete")] == ["ranking"] and len(calls.named("deploy")) == 2


@pytest.mark.parametrize("role", sorted(SCRIPTS))
def test_scripts_follow_the_hopsworks_contract(role: str) -> None:
    spec = importlib.util.spec_from_file_location(f"script_{role}", SCRIPTS[role])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if role.endswith("transformer"):
        assert {"preprocess", "postprocess"} <= set(vars(module.Transformer))
    else:
        assert "predict" in vars(module.Predict)


@pytest.mark.hopsworks
@pytest.mark.skipif(not os.environ.get("HOPSWORKS_API_KEY"), reason="needs HOPSWORKS_API_KEY")
def test_live_hopsworks_scripts_upload_and_transformer() -> None:
    """Against a real cluster: the scripts upload and a transformer builds from them. Deploying a run needs one
    registered there: set RECSYS_TEST_HOPSWORKS_RUN to also create, start, query and stop both deployments."""
    from recsys.config import load_settings
    from recsys.serving.hopsworks_deploy import deploy_to_hopsworks, login, resources, upload_scripts

    project = login(load_settings())
    run = os.environ.get("RECSYS_TEST_HOPSWORKS_RUN")
    paths = upload_scripts(project, run or "live-test")
    transformer = project.get_model_serving().create_transformer(
        script_file=paths["query_transformer"], resources=resources(1, 1024)
    )
    assert transformer.script_file == paths["query_transformer"]
    if run:
        deploy_to_hopsworks(project, run, replace=True)
        deployment = project.get_model_serving().get_deployment("recommender")
        try:
            answer = deployment.predict(data={"instances": [{"customer_id": "someone-new", "top_k": 3}]})
            assert len(answer["predictions"][0]["article_ids"]) == 3
        finally:
            for name in ("recommender", "ranking"):
                project.get_model_serving().get_deployment(name).stop()
