"""TensorFlow's native start-up chatter is filtered from the programs' stderr, and nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.native_stderr import _FirstImport, filter_first_import, filtered_stderr, kept_lines

# As TensorFlow 2.21 prints them on a machine without a GPU (the timestamps and thread ids vary).
CHATTER = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795391778.693975    3521 port.cc:153] oneDNN custom operations are on. You may see slightly different.
I0000 00:00:1795391778.694375    3521 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be.
W0000 00:00:1795391778.694375    3521 some.cc:1] a warning TF_CPP_MIN_LOG_LEVEL=2 hides
E0000 00:00:1795391783.484931    3521 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: (303)
E0000 00:00:1795391798.953506    3570 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. Fall back.
"""
REAL = """\
E0000 00:00:1795391798.953506    3570 op_kernel.cc:1] OP_REQUIRES failed: out of memory
Traceback (most recent call last):
ValueError: a real error
"""


def test_chatter_lines_go_and_every_other_line_stays_in_order() -> None:
    mixed = "".join(a + b for a, b in zip(CHATTER.splitlines(True), REAL.splitlines(True), strict=False))
    assert kept_lines(CHATTER) == ""
    assert kept_lines(mixed) == REAL
    assert kept_lines("no newline at the end") == "no newline at the end"


def test_the_block_s_native_writes_are_filtered(capfd: pytest.CaptureFixture[str]) -> None:
    with filtered_stderr():
        os.write(2, (CHATTER + REAL).encode())
    os.write(2, b"after the block\n")
    assert capfd.readouterr().err == REAL + "after the block\n"


def test_lines_are_written_back_when_the_block_raises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), filtered_stderr():
        os.write(2, (CHATTER + "the native reason\n").encode())
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "the native reason\n"


@pytest.fixture
def noisy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package that writes chatter and one real line to fd 2 when imported."""
    name = f"noisy_{os.getpid()}_{tmp_path.name.replace('-', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(f"import os\nos.write(2, {(CHATTER + 'a real line').encode()!r} + b'\\n')\n")
    (package / "data.txt").write_text("payload")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_the_first_import_is_filtered_wherever_it_happens(noisy_module: str, capfd: pytest.CaptureFixture[str]) -> None:
    seen = []
    filter_first_import(noisy_module, lambda module: seen.append(module.__name__))
    module = __import__(noisy_module)  # as any import statement in any module would
    assert capfd.readouterr().err == "a real line\n"
    assert seen == [noisy_module]
    assert not any(isinstance(f, _FirstImport) for f in sys.meta_path)  # one import only
    # the package still reads its own files through its loader
    assert module.__spec__.loader.get_data(str(Path(module.__file__).parent / "data.txt")) == b"payload"


def test_an_already_imported_module_is_left_alone(noisy_module: str, capfd: pytest.CaptureFixture[str]) -> None:
    __import__(noisy_module)
    capfd.readouterr()
    filter_first_import(noisy_module)
    assert not any(isinstance(f, _FirstImport) for f in sys.meta_path)


def _tensorflow_start(level: str) -> str:
    """stderr of a program that loads the pipelines' shared CLI module, then imports TensorFlow and runs an op."""
    code = "import recsys.cli_support; import tensorflow as tf; print(float(tf.constant(2.0) * 3))"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | (
        {"TF_CPP_MIN_LOG_LEVEL": level} if level else {}
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "6.0\n"
    return done.stderr


def test_the_programs_start_tensorflow_quietly_unless_asked_for_its_info_lines() -> None:
    quiet = _tensorflow_start("")  # the programs' default level, 2
    assert "absl::InitializeLog" not in quiet and "cuInit" not in quiet and "oneDNN" not in quiet
    assert "absl::InitializeLog" in _tensorflow_start("0")
