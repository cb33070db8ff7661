"""Shared test fixtures.

Golden data that is too large for the repository lives in ``../shared/fixtures`` (CI has it beside the
clone). Tests that need it use the ``shared_fixtures`` fixture, which skips with a clear reason when the
folder is absent, so a fresh clone still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"


def shared_dir() -> Path:
    """``$SALRANK_SHARED`` or ``../shared`` beside the repository."""
    env = os.environ.get("SALRANK_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    path = shared_dir() / "fixtures"
    if not path.is_dir():
        pytest.skip(f"golden fixtures not found at {path} (set SALRANK_SHARED or place shared/ beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_images() -> Path:
    path = shared_dir() / "images" / "coco"
    if not path.is_dir():
        pytest.skip(f"real test photos not found at {path} (set SALRANK_SHARED or place shared/ beside the repo)")
    return path


@pytest.fixture
def one_thread():
    """One torch thread for the test (as the fixtures were made, and so that two OpenMP threads do not
    spin against other processes on a busy 2-core machine); the previous count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
