"""``deploy --target hopsworks``: the two serving pairs of one run as Hopsworks deployments.

Hopsworks deploys registered models: the ``ranking`` deployment serves the run's ranker (ranking transformer →
ranking predictor), the ``recommender`` deployment its query tower (query transformer → query predictor; the
public endpoint), whose transformer calls the ranking deployment. The four scripts of
:mod:`recsys.serving.hopsworks_scripts` are uploaded to the project, and every component gets the run id in its
environment, so the deployments load one consistent model set (design §5) like the local servers do.

The calls are the SDK's own (``hsml`` 5.2): ``dataset_api.upload``, ``ms.create_transformer``,
``model.deploy(..., transformer=...)``, ``deployment.start``; the offline tests check every call against those
signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recsys.config import Settings
from recsys.errors import RecsysError
from recsys.serving.hopsworks_scripts import SCRIPTS
from recsys.serving.hopsworks_scripts.adapter import RANKING_DEPLOYMENT_ENV
from recsys.serving.model_set import QUERY_SERVICE, RANKING_SERVICE
from recsys.training.runs import QUERY_MODEL, RANKER_MODEL

SCRIPT_FOLDER = "Resources/recsys/serving"  # inside the project's file system
DEFAULT_ENVIRONMENT = "recsys-inference"  # a project Python environment with recsys installed


class HopsworksDeployError(RecsysError):
    """A deployment cannot be created (the message says which and why)."""


@dataclass(frozen=True)
class Pair:
    """One deployment: its name, the model it serves and its two scripts."""

    name: str
    model: str
    transformer: str
    predictor: str


PAIRS = (  # ranking first: the recommender's transformer needs it running
    Pair(RANKING_SERVICE, RANKER_MODEL, "ranking_transformer", "ranking_predictor"),
    Pair(QUERY_SERVICE, QUERY_MODEL, "query_transformer", "query_predictor"),
)


def login(settings: Settings) -> Any:
    """``hopsworks.login`` from the ``HOPSWORKS_*`` settings (the key stays secret)."""
    from recsys.store.hopsworks_backend import login_kwargs

    if settings.hopsworks_api_key is None:
        raise HopsworksDeployError("deploy --target hopsworks needs HOPSWORKS_API_KEY (and usually HOPSWORKS_HOST)")
    import hopsworks

    return hopsworks.login(**login_kwargs(settings))


def resources(cores: int, memory_mb: int) -> dict[str, Any]:
    """Requests and limits (twice the request) as the SDK's resource dict; one instance, no scale to zero."""
    return {
        "num_instances": 1,
        "requests": {"cores": cores, "memory": memory_mb, "gpus": 0},
        "limits": {"cores": 2 * cores, "memory": 2 * memory_mb, "gpus": 0},
    }


def env_vars(run_id: str) -> dict[str, str]:
    return {
        "RECSYS_BACKEND": "hopsworks",
        "RECSYS_SERVING_RUN_ID": run_id,
        RANKING_DEPLOYMENT_ENV: RANKING_SERVICE,
        "TF_USE_LEGACY_KERAS": "1",
        "POLARS_MAX_THREADS": "1",
    }


def upload_scripts(project: Any, run_id: str) -> dict[str, str]:
    """Each script uploaded under ``Resources/recsys/serving/<run id>``; role → its path in the project."""
    dataset_api = project.get_dataset_api()
    folder = f"{SCRIPT_FOLDER}/{run_id}"
    dataset_api.mkdir(folder)
    return {role: dataset_api.upload(str(path), folder, overwrite=True) for role, path in SCRIPTS.items()}


def deploy_to_hopsworks(
    project: Any,
    run_id: str,
    versions: dict[str, int] | None = None,
    *,
    environment: str = DEFAULT_ENVIRONMENT,
    replace: bool = False,
    start: bool = True,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Create (and start) the ``ranking`` and ``recommender`` deployments of run ``run_id``.

    ``project`` is a ``hopsworks.login()`` handle; ``versions`` maps model name → registry version (default: the
    registry versions of the run's models, found by run id). ``replace`` deletes deployments of the same names
    first; otherwise an existing one is an error. Returns the deployment names.
    """
    registry, serving = project.get_model_registry(), project.get_model_serving()
    versions = versions or _run_versions(run_id)
    for pair in PAIRS:
        existing = serving.get_deployment(pair.name)
        if existing is not None:
            if not replace:
                raise HopsworksDeployError(
                    f"a deployment named {pair.name!r} exists; pass --replace to delete it and deploy run {run_id}"
                )
            log(f"deleting the existing deployment {pair.name}")
            existing.delete(force=True)
    scripts = upload_scripts(project, run_id)
    env = env_vars(run_id)
    names = []
    for pair in PAIRS:
        if pair.model not in versions:
            raise HopsworksDeployError(f"run {run_id} has no {pair.model} model version to deploy")
        model = registry.get_model(pair.model, version=versions[pair.model])
        transformer = serving.create_transformer(
            script_file=scripts[pair.transformer], resources=resources(1, 2048), env_vars=env, environment=environment
        )
        deployment = model.deploy(
            name=pair.name,
            description=f"recsys {pair.name} pair, run {run_id}",
            script_file=scripts[pair.predictor],
            resources=resources(1, 2048),
            transformer=transformer,
            api_protocol="REST",
            environment=environment,
            env_vars=env,
        )
        log(f"created deployment {pair.name}: {pair.model} v{versions[pair.model]} + {pair.transformer}")
        if start:
            deployment.start(await_running=600)
            log(f"started {pair.name}")
        names.append(pair.name)
    return names


def _run_versions(run_id: str) -> dict[str, int]:
    """The registry versions of the run's models, through our store seam on the hopsworks backend."""
    from recsys.config import load_settings
    from recsys.store import connect
    from recsys.training.runs import find_run

    run = find_run(connect(load_settings(backend="hopsworks")).model_registry, run_id, need=(QUERY_MODEL, RANKER_MODEL))
    return {name: int(run.model(name).version or 0) for name in (QUERY_MODEL, RANKER_MODEL)}
