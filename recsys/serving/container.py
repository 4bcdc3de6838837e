"""The serving image's entry point: ``python -m recsys.serving.container ROLE [flags]`` runs one of the four servers.

The same server as :mod:`.process` (which the local launcher starts with a JSON spec), configured the way a
Kubernetes pod is: the role as the first argument, the rest from flags and ``RECSYS_*`` environment variables set
by the InferenceService manifests (``recsys/serving/manifests``). KServe appends its own flags to a transformer's
container (``--model_name``, ``--predictor_host``, ``--http_port``, ...): the ones we need are read, the others
ignored, so the transformer calls the predictor KServe placed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys

from recsys.serving.process import ROLES, ServerSpec, run

DEFAULT_PORT = 8080  # KServe's container port for REST
RANKING_URL_ENV = "RECSYS_SERVING_RANKING_URL"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recsys.serving.container", description=__doc__.splitlines()[0])
    p.add_argument("role", choices=ROLES, help="which of the four servers this container runs")
    p.add_argument("--run", default=os.environ.get("RECSYS_SERVING_RUN_ID"), help="training run id (required)")
    p.add_argument("--http_port", "--port", type=int, default=DEFAULT_PORT, dest="port")
    p.add_argument(
        "--predictor_host", "--predictor-host", default=None, help="transformers: host[:port] of the predictor"
    )
    p.add_argument(
        "--ranking_url", "--ranking-url", default=os.environ.get(RANKING_URL_ENV), help="query transformer: ranking URL"
    )
    return p


def spec_from_args(argv: list[str]) -> ServerSpec:
    """The server spec of a container's arguments (unknown flags, e.g. KServe's own, are ignored)."""
    from recsys.config import load_settings
    from recsys.serving.options import ServingOptions

    args, _ = parser().parse_known_args(argv)
    if not args.run:
        parser().error("--run (or RECSYS_SERVING_RUN_ID) is required: a pod serves one pinned run")
    if args.role in ("query_transformer", "ranking_transformer") and not args.predictor_host:
        parser().error(f"{args.role} needs --predictor_host (KServe passes it to a transformer container)")
    if args.role == "query_transformer" and not args.ranking_url:
        parser().error(f"the query transformer needs --ranking_url or {RANKING_URL_ENV}")
    settings = load_settings()
    return ServerSpec(
        role=args.role,
        port=args.port,
        run_id=args.run,
        home=str(settings.home),
        backend=settings.backend,
        predictor_host=args.predictor_host,
        ranking_url=args.ranking_url if args.role == "query_transformer" else None,
        options=ServingOptions.from_settings(settings).to_dict(),
    )


def main(argv: list[str] | None = None) -> int:
    return run(spec_from_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
