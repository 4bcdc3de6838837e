"""Start the four KServe servers as separate processes on loopback ports, wait until they are ready, stop them.

    query transformer (public) ──▶ query predictor
            │
            └──────────────────▶ ranking transformer ──▶ ranking predictor

The launcher checks the model set first (:func:`~recsys.serving.model_set.check_model_set`), so an incomplete
run is refused with a clear message before any process starts. It then starts one ``python -m
recsys.serving.process`` per server — all four at once, they load in parallel — and polls each server's
``/v1/models/<name>`` until it answers ready, then sends a few warm-up requests through every hop (the first
requests pay for connections and lazy set-up). A server that exits while loading stops the others, and the error
names it with the end of its log. :meth:`ServingStack.stop` sends SIGTERM (KServe's graceful shutdown) and kills
what is still running after a grace period. Each child also gets SIGTERM from the kernel should the launcher die
(Linux ``PR_SET_PDEATHSIG``), so no server outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path

from recsys.config import Settings
from recsys.errors import RecsysError
from recsys.serving.model_set import QUERY_SERVICE, RANKING_SERVICE
from recsys.serving.options import ServingOptions
from recsys.serving.process import LOOPBACK, ServerSpec

# Small requests on a shared CPU: one thread per library per process (four processes share the cores).
CHILD_ENV = {
    "POLARS_MAX_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_USE_LEGACY_KERAS": "1",
}


class ServingError(RecsysError):
    """A server did not start, or stopped on its own."""


@dataclass(frozen=True)
class Ports:
    """The HTTP port of each server; 0 means "pick a free loopback port"."""

    query: int = 8080
    query_predictor: int = 8081
    ranking: int = 8082
    ranking_predictor: int = 8083

    @classmethod
    def from_settings(cls, settings: Settings) -> Ports:
        return cls(
            settings.serving_port,
            settings.serving_query_predictor_port,
            settings.serving_ranking_port,
            settings.serving_ranking_predictor_port,
        )

    def resolved(self) -> Ports:
        """These ports with every 0 replaced by a free one; two servers on one port is an error."""
        given = [p for p in astuple(self) if p]
        if len(given) != len(set(given)):
            raise ServingError(f"two servers cannot share a port: {astuple(self)}")
        chosen: list[int] = []
        for port in astuple(self):
            if not port:
                port = free_port()
                while port in chosen or port in given:
                    port = free_port()
            chosen.append(port)
        return Ports(*chosen)


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOOPBACK, port)) == 0


@dataclass
class Server:
    spec: ServerSpec
    name: str  # the KServe model name it serves
    log: Path
    process: subprocess.Popen | None = None

    @property
    def ready_url(self) -> str:
        return f"http://{LOOPBACK}:{self.spec.port}/v1/models/{self.name}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class ServingStack:
    """The four servers of one run; use as a context manager or call :meth:`start` and :meth:`stop`."""

    settings: Settings
    run_id: str
    ports: Ports
    log_dir: Path
    options: ServingOptions
    servers: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The public endpoint: the query transformer's predict URL."""
        return f"http://{LOOPBACK}:{self.ports.query}/v1/models/{QUERY_SERVICE}:predict"

    def _specs(self) -> list[tuple[ServerSpec, str]]:
        common = {
            "run_id": self.run_id,
            "home": str(self.settings.home.resolve()),
            "backend": self.settings.backend,
            "options": self.options.to_dict(),
        }
        p = self.ports
        return [
            (ServerSpec("query_predictor", p.query_predictor, **common), QUERY_SERVICE),
            (ServerSpec("ranking_predictor", p.ranking_predictor, **common), RANKING_SERVICE),
            (
                ServerSpec("ranking_transformer", p.ranking, predictor_port=p.ranking_predictor, **common),
                RANKING_SERVICE,
            ),
            (
                ServerSpec(
                    "query_transformer", p.query, predictor_port=p.query_predictor, ranking_port=p.ranking, **common
                ),
                QUERY_SERVICE,
            ),
        ]

    def start(self, timeout_s: float = 180.0) -> ServingStack:
        """Start every server and wait until all are ready; on failure stop them all and raise."""
        busy = [port for port in astuple(self.ports) if port_in_use(port)]
        if busy:
            raise ServingError(f"port(s) {busy} already in use on {LOOPBACK}; choose others (0 = any free port)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **{k: v for k, v in CHILD_ENV.items() if k not in os.environ}}
        try:
            for spec, name in self._specs():
                server = Server(spec, name, self.log_dir / f"{spec.role}.log")
                with server.log.open("wb") as log:
                    server.process = subprocess.Popen(
                        [sys.executable, "-m", "recsys.serving.process", spec.to_json()],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        start_new_session=True,  # Ctrl-C reaches the launcher, which stops the servers in order
                        preexec_fn=_die_with_parent,
                    )
                self.servers.append(server)
            self._wait_ready(timeout_s)
            self._warm_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(self.servers)
        while pending:
            for server in list(pending):
                assert server.process is not None
                code = server.process.poll()
                if code is not None:
                    raise ServingError(
                        f"the {server.spec.role} server exited with code {code} while loading "
                        f"(log {server.log}):\n{server.log_tail()}"
                    )
                if _ready(server.ready_url):
                    pending.remove(server)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.spec.role for s in pending)
                raise ServingError(f"not ready after {timeout_s:.0f} s: {names}; logs in {self.log_dir}")
            if pending:
                time.sleep(0.2)

    def _warm_up(self, rounds: int = 3) -> None:
        """A few requests through every hop before anyone else's: the first ones pay for connections and lazy set-up
        (~100 ms). A made-up customer with a sent feature goes through the query tower and the ranker."""
        from recsys.serving.customers import feature_kinds
        from recsys.serving.model_set import query_schema
        from recsys.store import connect
        from recsys.training.runs import find_run

        run = find_run(connect(self.settings).model_registry, self.run_id)
        schema = query_schema(run)
        sample = {"numeric": 30.0, "categorical": "MISSING", "list": ["MISSING"]}
        features = dict([(name, sample[kind]) for name, kind in feature_kinds(schema).items()][:1])
        customer = -1 if schema.customer_id_kind == "int" else "warm-up"
        body = json.dumps({"instances": [{"customer_id": customer, "features": features}]}).encode()
        for _ in range(rounds):
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30):
                    pass
            except (urllib.error.URLError, OSError) as exc:
                raise ServingError(f"the warm-up request failed ({exc}); logs in {self.log_dir}") from None

    def check_alive(self) -> None:
        """Raise if a server has stopped on its own."""
        for server in self.servers:
            if server.process is not None and server.process.poll() is not None:
                raise ServingError(
                    f"the {server.spec.role} server stopped (code {server.process.returncode}; log {server.log}):\n"
                    f"{server.log_tail()}"
                )

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to every server (the public one first), then SIGKILL to any still running after ``grace_s``."""
        running = [s.process for s in reversed(self.servers) if s.process is not None and s.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.servers.clear()

    def __enter__(self) -> ServingStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGTERM when the launcher dies (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def start_servers(
    settings: Settings,
    run_id: str | None = None,
    *,
    ports: Ports | None = None,
    log_dir: Path | None = None,
    options: ServingOptions | None = None,
    timeout_s: float = 180.0,
) -> ServingStack:
    """Check the model set, start the four servers and wait until they are ready."""
    from recsys.serving.model_set import check_model_set
    from recsys.store import connect

    run = check_model_set(connect(settings), run_id or settings.serving_run_id)
    stack = ServingStack(
        settings,
        run.run_id,
        (ports or Ports.from_settings(settings)).resolved(),
        log_dir or settings.home / "logs" / "serving",
        options or ServingOptions.from_settings(settings),
    )
    return stack.start(timeout_s)


@contextlib.contextmanager
def running_servers(settings: Settings, run_id: str | None = None, **kwargs: object) -> Iterator[ServingStack]:
    """:func:`start_servers` as a context manager that always stops them."""
    stack = start_servers(settings, run_id, **kwargs)  # type: ignore[arg-type]
    try:
        yield stack
    finally:
        stack.stop()
