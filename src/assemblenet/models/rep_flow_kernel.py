"""The fused TV-L1 kernel of the representation-flow layer: loading it, and its autograd function.

The kernel (``_rep_flow_kernel.cpp``, built by ``pip install -e .``) runs all iterations of one frame pair in
one pass per iteration while the pair stays in cache, with an exact hand-written backward. It is plain C++
called through ctypes, so it does not depend on the torch ABI. Where it was not built (a fresh clone used
through ``PYTHONPATH``, no compiler at install time) or ``ASSEMBLENET_FLOW_KERNEL=0`` is set,
:func:`kernel_available` is false and the layer computes with PyTorch ops instead.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

_KERNEL_NAME = "_rep_flow_kernel"
_library: ctypes.CDLL | None = None
_load_error: str | None = None
_loaded = False


def _find_library() -> Path | None:
    folder = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / (_KERNEL_NAME + suffix)
        if candidate.is_file():
            return candidate
    return None


def _declare(library: ctypes.CDLL) -> None:
    pointer, i64, f64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    for dtype in ("f32", "f64"):
        forward = getattr(library, f"rep_flow_forward_{dtype}")
        forward.argtypes = [pointer] * 7 + [i64] * 4 + [f64] * 3 + [c_int]
        forward.restype = None
        backward = getattr(library, f"rep_flow_backward_{dtype}")
        backward.argtypes = [pointer] * 11 + [i64] * 4 + [f64] * 3 + [c_int]
        backward.restype = None
    library.rep_flow_kernel_version.restype = c_int


def load_kernel() -> ctypes.CDLL | None:
    """The kernel library, or None when it is not built or is disabled (the reason: :func:`kernel_status`)."""
    global _library, _load_error, _loaded
    if _loaded:
        return _library
    _loaded = True
    if os.environ.get("ASSEMBLENET_FLOW_KERNEL", "1").strip().lower() in ("0", "false", "no", "off"):
        _load_error = "disabled by ASSEMBLENET_FLOW_KERNEL"
        return None
    path = _find_library()
    if path is None:
        _load_error = "not built (install the package with pip to compile it)"
        return None
    try:
        library = ctypes.CDLL(str(path))
        _declare(library)
        if library.rep_flow_kernel_version() != 1:
            raise OSError("version mismatch")
    except (OSError, AttributeError) as exc:
        _load_error = f"{path.name}: {exc}"
        return None
    _library = library
    return library


def kernel_available() -> bool:
    return load_kernel() is not None


def kernel_status() -> str:
    """'loaded' or why the fused kernel is not used."""
    return "loaded" if load_kernel() is not None else str(_load_error)


def _suffix(dtype: torch.dtype) -> str:
    return {torch.float32: "f32", torch.float64: "f64"}[dtype]


def _ptr(tensor: Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


class FusedTVL1(torch.autograd.Function):
    """TV-L1 iterations of ``[N, H, W]`` inputs (image gradient x/y, its squared norm + eps, frame difference)
    with hyper-parameters ``theta' = |theta| + eps``, ``thr = lambda * theta'``, ``a = tau / theta'`` (0-d
    tensors). Returns the flow ``[N, 2, H, W]``. The backward pass is exact (first order); the start state of
    every iteration is kept for it (``6 * iterations`` fields per pair) when a gradient is needed."""

    @staticmethod
    def forward(ctx: Any, grad_x: Tensor, grad_y: Tensor, grad_sq: Tensor, rho_c: Tensor, theta: Tensor,
                thr: Tensor, a: Tensor, num_iterations: int) -> Tensor:
        library = load_kernel()
        assert library is not None, "FusedTVL1 needs the compiled kernel"
        inputs = [t.contiguous() for t in (grad_x, grad_y, grad_sq, rho_c)]
        n, height, width = inputs[0].shape
        flow = inputs[0].new_empty(n, 2, height, width)
        dual = inputs[0].new_empty(n, 4, height, width)
        saved = (inputs[0].new_empty(n, num_iterations, 6, height, width)
                 if any(ctx.needs_input_grad[:7]) else None)
        scalars = (float(theta), float(thr), float(a))
        getattr(library, f"rep_flow_forward_{_suffix(flow.dtype)}")(
            *(_ptr(t) for t in inputs), _ptr(flow), _ptr(dual), _ptr(saved), n, height, width, num_iterations,
            *scalars, torch.get_num_threads())
        if saved is not None:
            ctx.save_for_backward(*inputs, saved)
            ctx.scalars = scalars
            ctx.num_iterations = num_iterations
            ctx.hyper_dtype = theta.dtype
        return flow

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_flow: Tensor) -> tuple[Tensor | None, ...]:
        library = load_kernel()
        grad_x, grad_y, grad_sq, rho_c, saved = ctx.saved_tensors
        n, height, width = grad_x.shape
        grad_flow = grad_flow.to(grad_x.dtype).contiguous()
        outputs = [torch.zeros_like(grad_x) for _ in range(4)]
        sums = torch.zeros(3, dtype=torch.float64)
        getattr(library, f"rep_flow_backward_{_suffix(grad_x.dtype)}")(
            _ptr(grad_x), _ptr(grad_y), _ptr(grad_sq), _ptr(rho_c), _ptr(saved), _ptr(grad_flow),
            *(_ptr(t) for t in outputs), _ptr(sums), n, height, width, ctx.num_iterations, *ctx.scalars,
            torch.get_num_threads())
        hyper_grads = [s.to(ctx.hyper_dtype) for s in sums]
        return (*outputs, *hyper_grads, None)
