"""Filter the lines native libraries write straight to file descriptor 2 while a block runs.

TensorFlow 2.21 logs through absl before anything calls ``absl::InitializeLog``, so ``TF_CPP_MIN_LOG_LEVEL`` no
longer hides its start-up lines: every program that imports it prints an absl preamble, oneDNN and CUDA-probe
INFO lines (twice), and on a machine without a GPU an ERROR-level "failed call to cuInit" that looks like a fault.
:func:`filtered_stderr` captures fd 2 around such a block and writes back only the lines worth reading.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

# What TF_CPP_MIN_LOG_LEVEL=2 was meant to hide (absl's preamble, INFO and WARNING lines), and the two ERROR
# lines every CPU-only start prints: no CUDA driver, and oneDNN falling back to Eigen for half precision.
TENSORFLOW_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog"
    r"|[IW]\d{4} "
    r"|E\d{4} .*(failed call to cuInit|oneDNN supports DT_HALF))"
)


def kept_lines(text: str, chatter: re.Pattern[str] = TENSORFLOW_CHATTER) -> str:
    """``text`` without its chatter lines (each kept line keeps its line ending)."""
    return "".join(line for line in text.splitlines(keepends=True) if not chatter.match(line))


@contextmanager
def filtered_stderr(chatter: re.Pattern[str] = TENSORFLOW_CHATTER) -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards write back every captured line that is not ``chatter``.

    Lines are written back even when the block raises, so a native error message is never lost. Python's own
    ``sys.stderr`` writes go through fd 2 as well and are kept unless they look like chatter.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = kept_lines(capture.read().decode(errors="replace"), chatter)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _FilteredLoader:
    """Runs another loader's ``exec_module`` (then ``after``) inside :func:`filtered_stderr`."""

    def __init__(self, loader: Loader, after: Callable[[ModuleType], None]) -> None:
        self._loader, self._after = loader, after

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with filtered_stderr():
            self._loader.exec_module(module)
            self._after(module)

    def __getattr__(self, name: str) -> object:  # resource readers and the like: the real loader's
        return getattr(self._loader, name)


class _FirstImport(MetaPathFinder):
    """Finds ``name`` with the other finders, once, and hands it to a :class:`_FilteredLoader`."""

    def __init__(self, name: str, after: Callable[[ModuleType], None]) -> None:
        self.name, self.after = name, after

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self.after)  # type: ignore[assignment]
        return spec


def filter_first_import(name: str, after: Callable[[ModuleType], None] = lambda module: None) -> None:
    """Run the first import of top-level module ``name`` in this process (and then ``after(module)``) with its
    native chatter filtered, wherever that import happens. Nothing changes if ``name`` is already imported."""
    if name in sys.modules or any(isinstance(f, _FirstImport) and f.name == name for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstImport(name, after))


def _probe_devices(tf: ModuleType) -> None:
    """What TensorFlow logs once per process, made to happen while its import is filtered."""
    tf.config.list_physical_devices()  # the CUDA probe, instead of in the middle of the first step
    tf.cast(tf.constant([0.5], tf.float16), tf.float32)  # oneDNN's half-precision note (our float16 features)


def filter_tensorflow_start() -> None:
    """Filter TensorFlow's start-up chatter at its first import in this process (and probe its devices then),
    unless ``TF_CPP_MIN_LOG_LEVEL`` (read now) asks for INFO or WARNING lines."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() not in ("", "0", "1"):
        filter_first_import("tensorflow", _probe_devices)
