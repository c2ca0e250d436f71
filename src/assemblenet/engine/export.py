"""Export a trained model to TorchScript or ONNX, and check the export against eager PyTorch.

- TorchScript: ``torch.jit.script`` (input shapes stay dynamic); saved with ``torch.jit.save``.
- ONNX: the ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``, needs ``onnxscript``),
  opset 18. Batch and time are dynamic (ONNX input ``video: [batch, 3, frames, size, size]``, frames >= 2);
  the crop size is fixed by the example input. The representation-flow layer exports as plain ops (its TV-L1
  iterations unrolled) over all frame pairs at once, so that no input shape is baked into the graph.

Both paths reload the written file, run it on random input (onnxruntime for ONNX) and compare with eager
PyTorch; a difference above ``tolerance`` is an error. ONNX is checked at the export shape and at a second one
(one more clip and one more frame), which catches a shape baked into the graph.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from assemblenet.errors import AssembleNetError, ConfigError
from assemblenet.fileio import atomic_path
from assemblenet.input_spec import DEFAULT_INPUT

logger = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")


class ExportError(AssembleNetError):
    """The export failed or does not reproduce the eager model."""


@dataclass
class ExportReport:
    path: Path
    format: str
    input_shapes: list[tuple[int, ...]]
    max_abs_diff: float


def example_inputs(model: nn.Module, *, batch_size: int, num_frames: int, size: int,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes, in the order of :func:`input_names`: the clip in [0, 1], plus flow
    when the model takes precomputed flow, plus float object maps ``[B, K, T, H, W]`` when it has an object
    stem."""
    generator = torch.Generator().manual_seed(seed)
    inputs = [torch.rand(batch_size, 3, num_frames, size, size, generator=generator)]
    if "flow" in input_names(model):
        inputs.append(torch.randn(batch_size, 2, num_frames, size, size, generator=generator))
    if "objects" in input_names(model):
        classes = int(getattr(model, "num_object_classes"))  # an int attribute of models with an object stem
        inputs.append(torch.rand(batch_size, classes, num_frames, size, size, generator=generator))
    return tuple(inputs)


def input_names(model: nn.Module) -> list[str]:
    """The model's inputs, in order: ``video``, then ``flow`` (precomputed flow) and ``objects`` (object stem)."""
    names = ["video"]
    if getattr(model, "flow_mode", "rgb") == "precomputed" and getattr(model, "has_flow_stem", False):
        names.append("flow")
    if getattr(model, "has_object_stem", False):
        names.append("objects")
    return names


def _input_names(inputs: tuple[torch.Tensor, ...]) -> list[str]:
    return ["video", "flow"][: len(inputs)]


def _call(module: Any, names: list[str], inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``module(video, flow=..., objects=...)`` from named inputs."""
    output: torch.Tensor = module(inputs[0], **dict(zip(names[1:], inputs[1:])))
    return output


def export_torchscript(model: nn.Module, path: Path) -> None:
    with warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated but still the portable format
        warnings.filterwarnings("ignore", message=".*instance-level annotations.*")  # harmless scripting notice
        try:
            scripted = torch.jit.script(model)
        except Exception as exc:  # noqa: BLE001 - report any scripting failure as one line
            raise ExportError(f"TorchScript scripting failed: {_first_line(exc)}") from exc
        torch.jit.save(scripted, str(tmp))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, without terminal colour codes."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _exporter_output_hidden(hidden: bool = True) -> Iterator[None]:
    """Send everything written to stdout and stderr (Python's and the C libraries' file descriptors alike) to a
    discarded temporary file: the ONNX exporter prints its passes, diagnostics and a coloured report there
    (some 150 lines). ``hidden=False`` (``assemblenet -v export``) leaves them on the terminal."""
    if not hidden:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


def export_onnx(model: nn.Module, path: Path, inputs: tuple[torch.Tensor, ...], opset: int = 18, *,
                verbose: bool = False) -> None:
    try:
        import onnxscript  # noqa: F401 - required by the exporter
    except ImportError:
        raise ExportError("ONNX export needs the 'onnxscript' package: pip install onnxscript") from None
    names = input_names(model)
    kwargs = dict(zip(names[1:], inputs[1:]))
    # Batch and time stay symbolic for every input; H and W are fixed by the crop size.
    batch, frames = torch.export.Dim("batch", min=1), torch.export.Dim("frames", min=2)
    dynamic_shapes: dict[str, Any] = {"x": {0: batch, 2: frames}}
    dynamic_shapes.update({name: {0: batch, 2: frames} for name in kwargs})
    if not verbose:
        # The exporter's passes log every rewrite at INFO; keep the command's output readable.
        for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # "torchvision is not installed. Skipping torchvision::nms" and the like: irrelevant to this model.
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    logger.info("exporting to ONNX with torch.export (about a minute on a CPU)%s",
                "" if verbose else "; the exporter's log is shown with assemblenet -v")
    try:
        with warnings.catch_warnings(), _exporter_output_hidden(not verbose), atomic_path(path) as tmp:
            warnings.simplefilter("ignore", FutureWarning)  # torch.export internals, not actionable here
            # every input shares the batch and frames dims: the exporter notes that it names them once
            warnings.filterwarnings("ignore", message=".*shares the same shape constraints with another axis")
            torch.onnx.export(model, (inputs[0],), str(tmp), kwargs=kwargs, dynamo=True, input_names=names,
                              output_names=["logits"], opset_version=opset, optimize=True, verbose=False,
                              external_data=False, dynamic_shapes=dynamic_shapes)
    except Exception as exc:  # noqa: BLE001
        more = "" if verbose else " (rerun with assemblenet -v for the exporter's log)"
        raise ExportError(f"ONNX export failed: {_first_line(exc)}{more}") from exc


def run_exported(path: Path, fmt: str, inputs: tuple[torch.Tensor, ...], names: list[str] | None = None) -> np.ndarray:
    """Run an exported file (onnxruntime for ONNX) on ``inputs`` (named ``names``, by default video then flow)."""
    names = names if names is not None else _input_names(inputs)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()
        with torch.no_grad():
            return _call(module, names, inputs).float().numpy()
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: tensor.numpy() for name, tensor in zip(names, inputs)}
    outputs: list[np.ndarray] = session.run(None, feed)  # one array per graph output
    return outputs[0]


MIN_FRAMES = 2  # the ONNX graph's time axis is dynamic from 2 (torch.export bakes a size-1 dimension in)


def export_model(model: nn.Module, path: str | os.PathLike[str], *, fmt: str, batch_size: int = 1,
                 num_frames: int = DEFAULT_INPUT.num_frames, size: int = DEFAULT_INPUT.crop_size,
                 tolerance: float = 1e-4, opset: int = 18, check: bool = True, verbose: bool = False) -> ExportReport:
    """Export ``model`` (moved to CPU, eval mode) and verify the exported outputs against eager ones.

    The ONNX graph is traced from an example that cannot specialise its dynamic dimensions, whatever
    ``batch_size`` and ``num_frames`` ask for: ``torch.export`` bakes a dimension of size 1 into the graph, so the
    example has at least 2 clips, and never as many clips as frames. The checks run at the requested shape and
    at one more clip and frame. The file appears at ``path`` only once the checks pass (a failed export
    leaves nothing behind, and an older file there untouched). ``verbose`` shows the ONNX exporter's own log."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if num_frames < MIN_FRAMES:
        raise ConfigError(f"--frames: {num_frames}; an exported model takes {MIN_FRAMES} or more frames")
    path = Path(path)
    model = model.float().cpu().eval()
    inputs = example_inputs(model, batch_size=batch_size, num_frames=num_frames, size=size)
    trace_batch = max(batch_size, 2)
    trace_batch += trace_batch == num_frames
    trace_inputs = example_inputs(model, batch_size=trace_batch, num_frames=max(num_frames, 2), size=size)
    diff = float("nan")
    with atomic_path(path) as tmp:
        with torch.no_grad():
            if fmt == "torchscript":
                export_torchscript(model, tmp)
            else:
                export_onnx(model, tmp, trace_inputs, opset=opset, verbose=verbose)
        if check:
            logger.info("checking the %s file against eager PyTorch at two input shapes", fmt)
            diff = 0.0
            # the requested shape, then one more clip and one more frame (batch and time are dynamic)
            for seed, (batch, frames) in enumerate([(batch_size, num_frames), (batch_size + 1, num_frames + 1)], 1):
                check_inputs = example_inputs(model, batch_size=batch, num_frames=frames, size=size, seed=seed)
                try:
                    diff = max(diff, compare_with_eager(model, tmp, fmt, check_inputs, tolerance))
                except ExportError as exc:
                    raise ExportError(str(exc).replace(str(tmp), str(path))) from exc
    return ExportReport(path=path, format=fmt, input_shapes=[tuple(t.shape) for t in inputs], max_abs_diff=diff)


def compare_with_eager(model: nn.Module, path: Path, fmt: str, inputs: tuple[torch.Tensor, ...],
                       tolerance: float) -> float:
    """Largest |exported - eager| on ``inputs``; an error if the shapes differ or it exceeds ``tolerance``."""
    names = input_names(model)
    with torch.no_grad():
        eager = _call(model, names, inputs).float().numpy()
    try:
        exported = run_exported(path, fmt, inputs, names)
    except Exception as exc:  # noqa: BLE001 - e.g. onnxruntime rejecting a shape the graph baked in
        shape = list(inputs[0].shape)
        raise ExportError(f"{path}: the exported model fails on input {shape}: {_first_line(exc)}") from exc
    if exported.shape != eager.shape:
        raise ExportError(f"{path}: exported output shape {exported.shape} differs from eager {eager.shape}")
    diff = float(np.abs(exported - eager).max())
    if not diff <= tolerance:
        raise ExportError(f"{path}: exported outputs differ from eager PyTorch by {diff:.3g} (> {tolerance:g}) on "
                          f"input {list(inputs[0].shape)}")
    return diff
