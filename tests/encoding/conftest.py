"""Fixtures of the encoding tests."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small matrices: threaded BLAS only spins on the shared CPUs."""
    with threadpool_limits(limits=1):
        yield
