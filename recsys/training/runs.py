"""Training runs: one run id ties the query tower, the candidate tower, the embeddings and the ranker together.

Every model of a run is registered under the same ``run_id`` (design §5), so serving can load one consistent set
and never mixes a query tower with the embeddings of another candidate tower. The registry has no table of runs of
its own: a run is the set of registered models that carry its id. Run ids sort by creation time.

The candidate embeddings of a run live in the ``candidate_embeddings`` feature group at the version of the run's
``candidate_tower`` model: a feature group version is an integer, and that number is unique per candidate tower.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recsys.errors import RecsysError
from recsys.store.base import Model, ModelRegistry
from recsys.store.errors import NotFoundError

QUERY_MODEL = "query_tower"
CANDIDATE_MODEL = "candidate_tower"
RANKER_MODEL = "ranker"
MODEL_NAMES = (QUERY_MODEL, CANDIDATE_MODEL, RANKER_MODEL)
RETRIEVAL_MODELS = (QUERY_MODEL, CANDIDATE_MODEL)
EMBEDDINGS_GROUP = "candidate_embeddings"


class RunNotFoundError(RecsysError):
    """No run with the requested id, or none with the models a step needs."""


def new_run_id(now: datetime | None = None) -> str:
    """``run-YYYYmmddTHHMMSSZ-xxxxxx``: sorts by creation time; the random tail keeps parallel runs apart."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """The registered models of one run, by model name (the newest version when a name was saved twice)."""

    run_id: str
    models: dict[str, Model] = field(default_factory=dict)

    def has(self, names: Sequence[str]) -> bool:
        return all(name in self.models for name in names)

    def model(self, name: str) -> Model:
        if name not in self.models:
            have = ", ".join(sorted(self.models)) or "none"
            raise RunNotFoundError(f"run {self.run_id} has no '{name}' model (it has: {have})")
        return self.models[name]

    @property
    def embeddings_version(self) -> int:
        """The ``candidate_embeddings`` group version of this run (its candidate tower's registry version)."""
        version = self.model(CANDIDATE_MODEL).version
        assert version is not None
        return version

    @property
    def complete(self) -> bool:
        return self.has(MODEL_NAMES)


def list_runs(registry: ModelRegistry, names: Sequence[str] = MODEL_NAMES) -> list[Run]:
    """Every run that registered at least one of ``names``, oldest first."""
    runs: dict[str, Run] = {}
    for name in names:
        try:
            versions = registry.get_models(name)
        except NotFoundError:
            continue
        for model in versions:  # oldest first, so a later save of the same name in one run wins
            if model.run_id:
                runs.setdefault(model.run_id, Run(model.run_id)).models[name] = model
    return [runs[key] for key in sorted(runs)]


def find_run(registry: ModelRegistry, run_id: str | None = None, need: Sequence[str] = MODEL_NAMES) -> Run:
    """The run ``run_id``, or the newest run that has every model in ``need``; a clear error otherwise."""
    runs = list_runs(registry)
    if run_id is not None:
        match = [run for run in runs if run.run_id == run_id]
        if not match:
            raise RunNotFoundError(f"no training run '{run_id}'; runs: {_describe(runs)}")
        run = match[0]
        if not run.has(need):
            missing = ", ".join(name for name in need if name not in run.models)
            raise RunNotFoundError(f"run {run_id} lacks {missing}; runs: {_describe(runs)}")
        return run
    usable = [run for run in runs if run.has(need)]
    if not usable:
        wanted = " + ".join(need)
        raise RunNotFoundError(
            f"no training run has {wanted}; runs: {_describe(runs)}. "
            "Train one with `python -m training_pipeline all` "
            "(or `retrieval`, `python -m inference_pipeline embed`, then `ranking`)."
        )
    return usable[-1]


def _describe(runs: Sequence[Run]) -> str:
    if not runs:
        return "none yet"
    return "; ".join(f"{run.run_id} ({', '.join(sorted(run.models))})" for run in runs[-10:])
