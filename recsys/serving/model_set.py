"""One consistent model set: the query tower, the candidate embeddings and the ranker of one training run.

Serving never mixes runs (design §5): a query tower only makes sense with the embeddings of its own candidate
tower, and the ranker was trained on that retrieval model's candidates. The launcher resolves the run once
(:func:`resolve_run`: the given id, or the newest run that has all three models) and hands the id to every
server, which loads only its own part and reports the id in every response. An incomplete set — a model or the
embeddings missing, or a ranker that reads columns the online views do not have — is refused with a message that
says what is missing and how to make it.
"""

from __future__ import annotations

import json
from pathlib import Path

from recsys.errors import RecsysError
from recsys.pipeline.views import CUSTOMERS_VIEW, MISSING_VIEW, RANKING_VIEW
from recsys.store.base import FeatureGroup, FeatureView, Project
from recsys.store.errors import NotFoundError
from recsys.training.ranking_features import RankerSchema
from recsys.training.retrieval_data import TowerFeatures
from recsys.training.runs import EMBEDDINGS_GROUP, MODEL_NAMES, QUERY_MODEL, RANKER_MODEL, Run, find_run

QUERY_SERVICE = "recommender"  # the query pair: the public endpoint /v1/models/recommender:predict
RANKING_SERVICE = "ranking"  # the ranking pair
TOWER_SCHEMA_FILE, RANKER_META_FILE = "tower_features.json", "ranker.json"


class ModelSetError(RecsysError):
    """The run cannot be served: something it needs is missing."""


def resolve_run(project: Project, run_id: str | None = None) -> Run:
    """The run to serve, checked complete: its three models and its candidate embeddings."""
    run = find_run(project.model_registry, run_id, need=MODEL_NAMES)
    embeddings_group(project, run)
    return run


def embeddings_group(project: Project, run: Run) -> FeatureGroup:
    """The run's ``candidate_embeddings`` group (its vector index is what retrieval searches)."""
    try:
        return project.feature_store.get_feature_group(EMBEDDINGS_GROUP, run.embeddings_version)
    except NotFoundError:
        raise ModelSetError(
            f"run {run.run_id} has no candidate embeddings ({EMBEDDINGS_GROUP} v{run.embeddings_version}); "
            f"make them with `python -m inference_pipeline embed --run {run.run_id}`"
        ) from None


def view(project: Project, name_version: tuple[str, int]) -> FeatureView:
    try:
        return project.feature_store.get_feature_view(*name_version)
    except NotFoundError:
        name, version = name_version
        raise ModelSetError(f"the feature view '{name}' v{version} does not exist; {MISSING_VIEW}") from None


def model_folder(run: Run, name: str) -> Path:
    return Path(run.model(name).download())


def query_schema(run: Run) -> TowerFeatures:
    """The query tower's input schema, read without loading TensorFlow (the query transformer needs only this)."""
    path = model_folder(run, QUERY_MODEL) / TOWER_SCHEMA_FILE
    if not path.is_file():
        raise ModelSetError(f"run {run.run_id}: the query tower artefacts lack {path.name} ({path})")
    return TowerFeatures.from_json(path.read_text())


def ranker_schema(run: Run) -> RankerSchema:
    """The ranker's input schema, read without loading CatBoost (the ranking transformer needs only this)."""
    path = model_folder(run, RANKER_MODEL) / RANKER_META_FILE
    if not path.is_file():
        raise ModelSetError(f"run {run.run_id}: the ranker artefacts lack {path.name} ({path})")
    return RankerSchema.from_dict(json.loads(path.read_text())["schema"])


def check_ranker_inputs(run: Run, schema: RankerSchema, customers: FeatureView, ranking: FeatureView) -> None:
    """Refuse a ranker that reads columns the online views cannot give."""
    have_c, have_a = set(customers.query.features), set(ranking.query.features)
    lack = [f"customers.{c}" for c in schema.customer_columns() if c not in have_c]
    lack += [f"ranking.{c}" for c in schema.article_columns() if c not in have_a]
    if lack:
        raise ModelSetError(
            f"run {run.run_id}: the ranker reads {', '.join(lack)}, which the online views do not have; "
            "retrain the ranker on the current feature views or backfill the features it was trained with"
        )


def check_model_set(project: Project, run_id: str | None = None) -> Run:
    """Everything :func:`resolve_run` checks, plus the views and both schemas: what a launcher checks first."""
    run = resolve_run(project, run_id)
    customers, ranking = view(project, CUSTOMERS_VIEW), view(project, RANKING_VIEW)
    query_schema(run)
    check_ranker_inputs(run, ranker_schema(run), customers, ranking)
    return run
