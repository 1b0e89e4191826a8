"""LAPACK routines that scipy wraps, called so that they release the GIL.

scipy's Python-level LAPACK wrappers (``scipy.linalg.eigh`` and friends) hold the GIL
for the whole call, so one SDL fit's factorisation stalls the fit running beside it in
the next thread (`layer._in_parallel`). A ctypes call releases the GIL; it reaches the
same LAPACK routine through the function pointer scipy exports for Cython
(``scipy.linalg.cython_lapack``). Where that pointer is not the expected 32-bit-integer
interface, numpy's full eigendecomposition (which also releases the GIL) is used.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

#: scipy's exported signature of dsyevr: 3 chars, then LAPACK's 32-bit ints and doubles
_DSYEVR_ARGUMENTS = 21
_DSYEVR_INT_ARGUMENTS = 11


@cache
def _dsyevr():
    """ctypes function of LAPACK's dsyevr (GIL released while it runs), or None if unavailable."""
    try:
        from scipy.linalg import cython_lapack  # noqa: PLC0415

        capsule = cython_lapack.__pyx_capi__["dsyevr"]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        signature = get_name(capsule)
        arguments = signature[signature.index(b"(") + 1: signature.rindex(b")")].split(b",")
        if len(arguments) != _DSYEVR_ARGUMENTS or sum(a.strip() == b"int *" for a in arguments) != _DSYEVR_INT_ARGUMENTS:
            return None  # e.g. an ILP64 build: 64-bit integers
        return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * _DSYEVR_ARGUMENTS)(get_pointer(capsule, signature))
    except (AttributeError, ImportError, KeyError, ValueError):
        return None


def top_eigenvectors(gram: np.ndarray, k: int) -> np.ndarray:
    """(n, k) unit eigenvectors of the k largest eigenvalues of a symmetric ``gram`` (n, n), largest first.

    LAPACK's dsyevr for eigenvalues n - k + 1 .. n (what ``scipy.linalg.eigh(gram,
    subset_by_index=[n - k, n - 1])`` computes, with the GIL released); numpy's full
    ``eigh`` where scipy's LAPACK cannot be reached that way.
    """
    gram = np.asarray(gram, dtype=np.float64)
    n = gram.shape[0]
    if not 1 <= k <= n or gram.shape != (n, n):
        raise ValueError(f"need a square gram and 1 <= k <= n, got {gram.shape} and k={k}")
    routine = _dsyevr()
    if routine is None:
        return np.linalg.eigh(gram)[1][:, ::-1][:, :k]
    a = np.array(gram, order="F")  # overwritten
    ints = np.array([n, n, n - k + 1, n, 0, n, -1, -1, 0], dtype=np.intc)  # n lda il iu m ldz lwork liwork info
    reals = np.zeros(3)  # vl, vu (unused for a range of indices), abstol (0: LAPACK's default)
    chars = np.frombuffer(b"VIL", dtype=np.uint8).copy()  # eigenvectors, a range of indices, lower triangle
    values = np.empty(n)
    vectors = np.empty((n, k), order="F")
    support = np.empty(2 * k, dtype=np.intc)

    def call(work: np.ndarray, iwork: np.ndarray) -> None:
        i, r, c = ints.ctypes.data, reals.ctypes.data, chars.ctypes.data
        size, real = ints.itemsize, reals.itemsize
        routine(c, c + 1, c + 2, i, a.ctypes.data, i + size, r, r + real, i + 2 * size, i + 3 * size, r + 2 * real,
                i + 4 * size, values.ctypes.data, vectors.ctypes.data, i + 5 * size, support.ctypes.data,
                work.ctypes.data, i + 6 * size, iwork.ctypes.data, i + 7 * size, i + 8 * size)

    work, iwork = np.empty(1), np.empty(1, dtype=np.intc)
    call(work, iwork)  # lwork = liwork = -1: a workspace query, the sizes come back in work[0] and iwork[0]
    ints[6], ints[7] = int(work[0]), int(iwork[0])
    call(np.empty(int(ints[6])), np.empty(int(ints[7]), dtype=np.intc))
    if ints[8] != 0 or ints[4] != k:
        return np.linalg.eigh(gram)[1][:, ::-1][:, :k]  # LAPACK did not converge: the full decomposition
    return vectors[:, ::-1]
