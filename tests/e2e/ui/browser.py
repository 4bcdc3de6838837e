"""Headless Chromium for the UI test: Debian's ``chromium`` package, installed here when the machine lacks it.

Playwright's Python package drives ``/usr/bin/chromium`` through ``executable_path``; it never downloads a
browser of its own. The flags keep Chromium from reaching out to the network at start (the test machines are
offline, and a headless Chromium otherwise waits on those connections) and from needing a GPU or a sandbox
(containers run as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver", "fonts-liberation")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
)


def _apt(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=timeout_s, env=env, check=False)


def _has_candidate(package: str) -> bool:
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=False).stdout
    return "Candidate:" in policy and "Candidate: (none)" not in policy


def ensure_chromium(timeout_s: float = 300.0) -> Path:
    """``/usr/bin/chromium``, installed with apt-get when missing; skip when this machine cannot install it."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and there is no apt-get to install it (install Debian's chromium)")
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing; installing it needs root: sudo apt-get install -y {' '.join(PACKAGES)}")
    if not _has_candidate(PACKAGES[0]):
        update = _apt(["update"], timeout_s)
        if update.returncode != 0:
            pytest.fail(f"apt-get update failed (code {update.returncode}):\n{update.stderr[-2000:]}")
    install = _apt(["install", "-y", "--no-install-recommends", *PACKAGES], timeout_s)
    if install.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"apt-get install {' '.join(PACKAGES)} failed (code {install.returncode}):\n{install.stderr[-2000:]}"
        )
    return CHROMIUM
