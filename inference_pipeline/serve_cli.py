"""``serve`` and ``recommend``: the four KServe servers on loopback ports, and a client for them.

Registered on the ``inference_pipeline`` app by :func:`register`; all logic lives in :mod:`recsys.serving`.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from recsys.cli_support import BACKEND_OPTION, HOME_HELP, console
from recsys.config import load_settings
from recsys.errors import RecsysError

if TYPE_CHECKING:
    from rich.table import Table

RUN_HELP = "Training run id to serve (default RECSYS_SERVING_RUN_ID, else the newest run with all three models)."
PORT_HELP = "HTTP port of the {} (default RECSYS_SERVING_{}; 0 = any free port)."


def register(app: typer.Typer) -> None:
    """Add the ``serve`` and ``recommend`` commands to ``app``."""
    app.command("serve")(serve)
    app.command("recommend")(recommend)


def serve(
    run: str | None = typer.Option(None, "--run", help=RUN_HELP),
    port: int | None = typer.Option(None, help=PORT_HELP.format("public endpoint (query transformer)", "PORT")),
    query_predictor_port: int | None = typer.Option(
        None, help=PORT_HELP.format("query predictor", "QUERY_PREDICTOR_PORT")
    ),
    ranking_port: int | None = typer.Option(None, help=PORT_HELP.format("ranking transformer", "RANKING_PORT")),
    ranking_predictor_port: int | None = typer.Option(
        None, help=PORT_HELP.format("ranking predictor", "RANKING_PREDICTOR_PORT")
    ),
    log_dir: Path | None = typer.Option(None, help="Server logs (default RECSYS_HOME/logs/serving)."),
    timeout: float = typer.Option(180.0, help="Seconds to wait for all four servers to be ready."),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Start the four KServe servers (one process each) and serve until Ctrl-C or SIGTERM."""
    from recsys.serving.servers import start_servers

    settings = load_settings(
        backend=backend,
        home=home,
        serving_port=port,
        serving_query_predictor_port=query_predictor_port,
        serving_ranking_port=ranking_port,
        serving_ranking_predictor_port=ranking_predictor_port,
    )
    with console.status("starting the query and ranking servers (loading models)..."):
        stack = start_servers(settings, run, log_dir=log_dir, timeout_s=timeout)
    # Ctrl-C and SIGTERM both end the wait (set explicitly: a shell starts background jobs with SIGINT ignored)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _print_started(stack, settings)
        while not stop.wait(0.5):
            stack.check_alive()
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("[green]stopped[/] the four servers")


def _print_started(stack: Any, settings: Any) -> None:
    from recsys.data.dataset import CUSTOMER_ID
    from recsys.pipeline.groups import CUSTOMERS
    from recsys.store import connect

    ids = CUSTOMERS.get(connect(settings).feature_store).select([CUSTOMER_ID]).read().get_column(CUSTOMER_ID)
    example = json.dumps({"instances": [{"customer_id": ids[0] if len(ids) else "CUSTOMER_ID", "top_k": 12}]})
    p = stack.ports
    console.print(f"[green]serving[/] run [bold]{stack.run_id}[/]")
    console.print(f"  endpoint            {stack.url}")
    console.print(
        f"  query predictor     :{p.query_predictor}   ranking transformer :{p.ranking}   "
        f"ranking predictor :{p.ranking_predictor}"
    )
    console.print(f"  logs                {stack.log_dir}")
    console.print("  note: KServe listens on all interfaces (0.0.0.0; it has no host option): firewall these ports")
    console.print("        on a shared machine.")
    console.print("try:", style="bold")
    console.print(
        f"  curl -s -X POST {stack.url} -H 'Content-Type: application/json' -d '{example}'",
        highlight=False,
        soft_wrap=True,
    )
    console.print("Ctrl-C stops all four servers.")


def recommend(
    customer_id: str = typer.Argument(..., help="The customer to recommend for (unknown ids get a cold start)."),
    top_k: int = typer.Option(12, "--top-k", help="How many articles."),
    request_time: str | None = typer.Option(None, help="ISO-8601 time of the request (default now)."),
    feature: list[str] = typer.Option(
        [], "--feature", help="A customer feature for the request, KEY=VALUE (e.g. age=31, index_group_name=Divided)."
    ),
    in_process: bool = typer.Option(False, "--in-process", help="Run the four models here, without the servers."),
    url: str | None = typer.Option(None, help="The endpoint (default http://127.0.0.1:RECSYS_SERVING_PORT/...)."),
    run: str | None = typer.Option(
        None,
        "--run",
        help="With --in-process, the training run to load (default RECSYS_SERVING_RUN_ID, else the newest run with all "
        "three models). Without it, the run the servers must be serving: an answer from another run is an error.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON answer."),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Ask the recommender (the running servers, or the same models in process) for one customer."""
    settings = load_settings(backend=backend, home=home)
    instance: dict[str, Any] = {"customer_id": customer_id, "top_k": top_k}
    if request_time:
        instance["request_time"] = request_time
    if feature:
        instance["features"] = dict(_feature(item) for item in feature)
    body = {"instances": [instance]}
    if in_process:
        answer = _in_process(settings, run, body)
    else:
        from recsys.serving.model_set import QUERY_SERVICE

        endpoint = url or f"http://127.0.0.1:{settings.serving_port}/v1/models/{QUERY_SERVICE}:predict"
        answer = _over_http(endpoint, body)
        if run is not None:
            _check_served_run(answer, run, endpoint)
    if as_json:
        console.print_json(json.dumps(answer))
        return
    print_answer(answer)


def _feature(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--feature")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = [v.strip() for v in raw.split(",")] if "," in raw else raw
    return key.strip(), value


def _in_process(settings: Any, run: str | None, body: dict[str, Any]) -> dict[str, Any]:
    from recsys.cli_support import quiet_tensorflow
    from recsys.serving.chain import InProcessChain
    from recsys.serving.options import ServingOptions
    from recsys.serving.requests import BadRequest
    from recsys.store import connect

    quiet_tensorflow()
    with console.status("loading the model set..."):
        chain = InProcessChain(
            connect(settings), run or settings.serving_run_id, ServingOptions.from_settings(settings)
        )
    try:
        return chain.recommend(body)
    except BadRequest as exc:
        raise RecsysError(f"bad request: {exc}") from None
    finally:
        chain.close()


def _over_http(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.post(url, json=body, timeout=30.0)
    except httpx.TransportError as exc:
        raise RecsysError(
            f"no recommender at {url} ({exc}); start it with `python -m inference_pipeline serve`, or pass --in-process"
        ) from None
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise RecsysError(f"the recommender answered {response.status_code}: {message}")
    return response.json()


def _check_served_run(answer: dict[str, Any], run: str, url: str) -> None:
    """The servers serve the run they were started with, whatever ``--run`` says: printing their run's list as if it
    were ``run``'s, with exit 0, would mislead (and a warning scrolls past, or is lost under ``--json``)."""
    served = {answer.get("run_id")} | {prediction.get("run_id") for prediction in answer.get("predictions", [])}
    served.discard(None)
    if served != {run}:
        which = f"run {', '.join(sorted(served))}" if served else "no run id"
        raise RecsysError(
            f"--run {run}: the recommender at {url} answered with {which}, not {run}'s recommendations; restart it "
            f"with `python -m inference_pipeline serve --run {run}`, or pass --in-process to use {run}'s models here"
        )


DESCRIPTION = ("product_type_name", "colour_group_name", "index_group_name")  # under the name, in the tables


def print_answer(answer: dict[str, Any]) -> None:
    for prediction in answer["predictions"]:
        console.print(recommendation_table(prediction))
    timings = answer.get("timings_ms", {})
    stages = "  ".join(f"{name} {ms:.1f}" for name, ms in timings.items() if "." not in name)
    console.print(f"stages (ms): {stages}", highlight=False)


def recommendation_table(prediction: dict[str, Any]) -> Table:
    """One customer's list. Ids, scores and sources never wrap nor shorten (a cut id is a wrong id); each article
    is described in one column, its name over its type, colour and index group, which wraps at a narrow console
    (the demo's 80 columns) where four narrow columns would break words."""
    from rich.table import Column, Table
    from rich.text import Text

    table = Table(
        Column("#", justify="right", no_wrap=True),
        Column("article_id", no_wrap=True),
        Column("score", justify="right", no_wrap=True),
        Column("article", overflow="fold"),
        Column("source", no_wrap=True),
        title=f"customer {prediction['customer_id']} ({prediction['source']}), run {prediction['run_id']}",
    )
    for rank, item in enumerate(prediction["articles"], 1):
        details = " · ".join(str(item[key]) for key in DESCRIPTION if item.get(key) not in (None, ""))
        article = Text(str(item.get("prod_name") or ""))
        if details:
            article.append(("\n" if article else "") + details, style="dim")
        table.add_row(str(rank), str(item["article_id"]), f"{item['score']:.4f}", article, item["source"])
    return table
