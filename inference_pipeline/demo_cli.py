"""``python -m inference_pipeline demo``: start the four servers, send real requests, print the answers, stop.

What ``make demo`` ends with: known customers (taken from the store, never hard-coded), an unknown customer
(cold start) and a bad request (answered 400 while the servers keep serving), all over HTTP on loopback.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recsys.cli_support import BACKEND_OPTION, HOME_HELP, console


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the inference pipeline CLI."""
    app.command("demo")(demo)


def demo(
    customers: int = typer.Option(2, min=1, help="How many known customers to ask for."),
    top_k: int = typer.Option(6, "--top-k", min=1, help="Articles per answer."),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Serve, answer real requests (known, unknown and bad), stop."""
    import httpx
    import polars as pl

    from inference_pipeline.serve_cli import print_answer
    from recsys.config import load_settings
    from recsys.pipeline.views import CUSTOMERS_VIEW
    from recsys.serving.servers import running_servers
    from recsys.store import connect

    settings = load_settings(backend=backend, home=home)
    rows, _ = connect(settings).feature_store.get_feature_view(*CUSTOMERS_VIEW).training_data()
    known = rows.filter(pl.col("n_purchases") > 0).sample(customers, seed=settings.seed)["customer_id"].to_list()
    console.print("starting the four KServe servers (one process each) on loopback...")
    with running_servers(settings) as stack:
        console.print(f"[bold]recommender up[/] at {stack.url}")
        for customer in [*known, "new-customer-demo"]:
            body = {"instances": [{"customer_id": customer, "top_k": top_k}]}
            response = httpx.post(stack.url, json=body, timeout=30.0)
            response.raise_for_status()
            print_answer(response.json())
        bad = httpx.post(stack.url, json={"instances": [{"customer_id": known[0], "top_k": 0}]}, timeout=30.0)
        console.print(f"bad request (top_k 0) -> HTTP {bad.status_code}: {bad.text}", highlight=False)
        again = httpx.post(stack.url, json={"instances": [{"customer_id": known[0], "top_k": 3}]}, timeout=30.0)
        console.print(f"next good request -> HTTP {again.status_code}", highlight=False)
    console.print("servers stopped. Keep them running with `make serve` (python -m inference_pipeline serve).")
    console.print("demo shop UI: `make serve`, then in another terminal `make ui` (http://127.0.0.1:8501).")
