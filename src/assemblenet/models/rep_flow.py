"""Representation flow: TV-L1 optical flow computed inside the network (Piergiovanni & Ryoo, CVPR 2019).

This is the layer AssembleNet uses to turn RGB into the input of its flow stems. It follows the official
TensorFlow layer step for step (40 iterations, theta=0.3, lambda=0.15, tau=0.25, central-difference image
gradients of the second frame, forward-difference flow gradients, backward-difference divergence, all with
TF 'SAME' zero padding at the borders), with two engineering changes
that do not change the result:

* theta enters as ``|theta| + 1e-12`` like the reference;
* the three-way threshold step is written as one clamp: ``v = u + clamp(-rho/|g|^2, -lambda*theta,
  lambda*theta) * g``, which equals the masked update case by case;
* frame pairs are independent, so the iterations run over chunks of pairs small enough to stay in the CPU
  cache, which makes the memory-bound loop several times faster than iterating over the whole batch.

Implementations (``implementation=``): ``'fused'`` runs the iterations in the compiled kernel of
``rep_flow_kernel.py`` (CPU: one sweep per iteration over a cache-resident frame pair, exact backward), or,
on a GPU or where the kernel is not built, in a PyTorch loop with in-place buffers when no gradient is needed
(with a gradient, the reference ops, which a GPU runs over all pairs at once); ``'reference'``
is the step-by-step formulation of :func:`tvl1_flow` (kept as the reference the tests compare against). Export
and scripting always trace the PyTorch ops, over all frame pairs at once so that batch and time stay dynamic.

Sign convention: ``flow[:, 0]`` is the horizontal displacement (positive = content moves right) and
``flow[:, 1]`` the vertical one (positive = content moves down), in pixels, from frame t to frame t+1.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional

import torch
from torch import Tensor, nn

from assemblenet.models.rep_flow_kernel import FusedTVL1, kernel_available

NormalizationMode = Literal["clip", "batch"]
Implementation = Literal["fused", "reference"]


class RepresentationFlow(nn.Module):
    """TV-L1 representation flow.

    Args:
        num_iterations: TV-L1 iterations (40 in AssembleNet).
        theta, lambda_, tau: TV-L1 hyper-parameters. Fixed buffers unless ``trainable=True``.
        normalization: ``'clip'`` rescales each clip's grey values to [0, 255] with its own min/max (correct
            for batched inference: a clip's flow does not depend on its batch mates); ``'batch'`` uses the
            min/max of the whole batch, which is what the TF implementation does.
        trainable: learn theta, lambda and tau (as in the representation-flow paper).
        chunk_pixels: frame pairs are processed in chunks of about this many pixels to stay in cache (the
            PyTorch paths).
        implementation: ``'fused'`` (default: the compiled kernel, else in-place PyTorch) or ``'reference'``.

    Shapes:
        input ``[B, 3, T, H, W]`` RGB in [0, 1] (any range works: it is min/max normalised);
        output ``[B, 2, T, H, W]`` flow in pixels; frame t holds the flow from t to t+1 and the last flow
        frame is repeated so that the output keeps T frames. T must be at least 2.
    """

    def __init__(
        self,
        *,
        num_iterations: int = 40,
        theta: float = 0.3,
        lambda_: float = 0.15,
        tau: float = 0.25,
        normalization: NormalizationMode = "clip",
        trainable: bool = False,
        chunk_pixels: int = 65536,
        implementation: Implementation = "fused",
    ) -> None:
        super().__init__()
        if num_iterations < 1:
            raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
        if normalization not in ("clip", "batch"):
            raise ValueError(f"normalization must be 'clip' or 'batch', got {normalization!r}")
        if implementation not in ("fused", "reference"):
            raise ValueError(f"implementation must be 'fused' or 'reference', got {implementation!r}")
        self.num_iterations = int(num_iterations)
        self.implementation = implementation
        self.normalization = normalization
        self.chunk_pixels = int(chunk_pixels)
        hyper = torch.tensor([theta, lambda_, tau], dtype=torch.float32)
        if trainable:
            self.hyper = nn.Parameter(hyper)
        else:
            self.register_buffer("hyper", hyper)

    @property
    def trainable(self) -> bool:
        return isinstance(self.hyper, nn.Parameter)

    def extra_repr(self) -> str:
        theta, lambda_, tau = (float(v) for v in self.hyper.detach())
        return (f"num_iterations={self.num_iterations}, theta={theta:.3g}, lambda={lambda_:.3g}, tau={tau:.3g}, "
                f"normalization={self.normalization!r}, trainable={self.trainable}")

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> RepresentationFlow:
        # A model cast to bf16/fp16 keeps the TV-L1 constants in fp32: the layer computes in fp32 anyway, and
        # theta = 0.3 in bf16 would be 0.30078.
        original = self.hyper.detach().clone()
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # torch leaves Module._apply unannotated
        if self.hyper.dtype in (torch.bfloat16, torch.float16):
            self.hyper.data = original.to(device=self.hyper.device, dtype=torch.float32)
        return self

    def forward(self, rgb: Tensor) -> Tensor:
        if rgb.dim() != 5 or rgb.shape[1] != 3:
            raise ValueError(f"representation flow expects [B, 3, T, H, W], got {list(rgb.shape)}")
        batch, _, frames, height, width = rgb.shape
        if frames < 2:
            raise ValueError(f"representation flow needs at least 2 frames, got T={frames}")
        # fp32 at least (bf16/fp16 inputs would lose the flow); float64 stays float64 (gradcheck)
        grey = (rgb if rgb.dtype == torch.float64 else rgb.float()).mean(dim=1)  # [B, T, H, W]
        grey = normalize_to_255(grey, per_clip=self.normalization == "clip")
        first = grey[:, :-1].reshape(-1, height, width)
        second = grey[:, 1:].reshape(-1, height, width)
        theta, lambda_, tau = self.hyper[0], self.hyper[1], self.hyper[2]
        fused: Optional[Tensor] = None
        if self.implementation == "fused" and not torch.jit.is_scripting():
            fused = self._fused_flow(first, second)
        if fused is not None:
            chunks = [fused]
        else:
            pairs_per_chunk = max(1, self.chunk_pixels // (height * width))
            # export / FLOP counting: one call over all pairs keeps batch and time symbolic; on a GPU, small
            # chunks would only add kernel launches (chunking is for CPU caches)
            if _tracing(rgb) or rgb.device.type != "cpu":
                pairs_per_chunk = first.shape[0]
            chunks = [
                tvl1_flow(first[i:i + pairs_per_chunk], second[i:i + pairs_per_chunk],
                          num_iterations=self.num_iterations, theta=theta, lambda_=lambda_, tau=tau)
                for i in range(0, first.shape[0], pairs_per_chunk)
            ]
        flow = (chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=0)).view(batch, frames - 1, 2, height, width)
        flow = torch.cat([flow, flow[:, -1:]], dim=1)  # repeat the last flow frame to keep T frames
        return flow.permute(0, 2, 1, 3, 4).contiguous()

    @torch.jit.unused
    def _fused_flow(self, first: Tensor, second: Tensor) -> Optional[Tensor]:
        """Flow of ``[N, H, W]`` pairs on the fused path, or None where it does not apply (tracing, or a
        gradient is needed and the compiled kernel cannot provide it: the reference ops then do)."""
        if _tracing(first) or first.dtype not in (torch.float32, torch.float64):
            return None
        theta, lambda_, tau = self.hyper[0], self.hyper[1], self.hyper[2]
        needs_grad = torch.is_grad_enabled() and (first.requires_grad or second.requires_grad
                                                  or self.hyper.requires_grad)
        on_cpu = first.device.type == "cpu"
        if on_cpu and kernel_available():
            grad_x, grad_y = central_gradient(second)
            grad_sq = grad_x * grad_x + grad_y * grad_y + 1e-12
            theta = torch.abs(theta) + 1e-12
            # torch leaves autograd.Function.apply unannotated
            flow: Tensor = FusedTVL1.apply(  # type: ignore[no-untyped-call]
                grad_x, grad_y, grad_sq, second - first, theta, lambda_ * theta, tau / theta, self.num_iterations)
            return flow
        if needs_grad:
            return None
        constants: tuple[float | Tensor, float | Tensor, float | Tensor] = (theta, lambda_, tau)
        if on_cpu:
            constants = (float(theta), float(lambda_), float(tau))  # host values: no device to wait for
        # On a GPU the constants stay 0-d device tensors: reading them would make the host wait for the GPU.
        return tvl1_flow_inplace(first, second, num_iterations=self.num_iterations, theta=constants[0],
                                 lambda_=constants[1], tau=constants[2],
                                 chunk_pixels=self.chunk_pixels if on_cpu else first.numel())


def _tracing(tensor: Tensor) -> bool:
    """True while torch.export / dynamo / FLOP counting traces the layer (python ints would be baked in)."""
    if torch.jit.is_scripting():
        return False
    return (tensor.device.type == "meta" or torch.compiler.is_compiling() or torch.compiler.is_exporting()
            or torch.jit.is_tracing())


def normalize_to_255(grey: Tensor, *, per_clip: bool) -> Tensor:
    """Min/max-rescale ``[B, T, H, W]`` grey values to [0, 255], per clip or over the whole batch.

    A constant clip is returned unchanged, as the reference does."""
    if per_clip:
        flat = grey.flatten(1)
        low = flat.amin(dim=1).view(-1, 1, 1, 1)
        high = flat.amax(dim=1).view(-1, 1, 1, 1)
    else:
        low, high = grey.amin(), grey.amax()
    spread = high - low
    constant = spread <= 0
    normalized = 255.0 * (grey - low) / spread.clamp_min(1e-12)
    return torch.where(constant, grey, normalized)


def tvl1_flow(
    first: Tensor,
    second: Tensor,
    *,
    num_iterations: int,
    theta: Tensor,
    lambda_: Tensor,
    tau: Tensor,
) -> Tensor:
    """TV-L1 flow between ``first`` and ``second`` (``[N, H, W]`` each, grey in [0, 255]); returns ``[N, 2, H, W]``.

    The hyper-parameters are 0-d tensors so that they can be trained."""
    grad_x, grad_y = central_gradient(second)
    image_grad = torch.stack([grad_x, grad_y], dim=1)  # [N, 2, H, W]
    grad_sq = grad_x * grad_x + grad_y * grad_y + 1e-12  # [N, H, W]
    # u starts at zero, so the linearised residual at u = 0 is the frame difference.
    rho_c = (second - first).unsqueeze(1)
    grad_sq = grad_sq.unsqueeze(1)
    theta = torch.abs(theta) + 1e-12
    threshold = lambda_ * theta
    tau_over_theta = tau / theta

    n, height, width = first.shape
    flow = first.new_zeros(n, 2, height, width)
    dual_x = first.new_zeros(n, 2, height, width)  # p11, p21
    dual_y = first.new_zeros(n, 2, height, width)  # p12, p22
    for _ in range(num_iterations):
        rho = rho_c + (image_grad * flow).sum(dim=1, keepdim=True) + 1e-12
        step = torch.clamp(-rho / grad_sq, min=-threshold, max=threshold)
        flow = flow + step * image_grad + theta * divergence(dual_x, dual_y)
        flow_dx, flow_dy = forward_gradient(flow)
        scale = 1.0 + tau_over_theta * torch.sqrt(flow_dx * flow_dx + flow_dy * flow_dy + 1e-12)
        dual_x = (dual_x + tau_over_theta * flow_dx) / scale
        dual_y = (dual_y + tau_over_theta * flow_dy) / scale
    return flow


@torch.no_grad()
def tvl1_flow_inplace(first: Tensor, second: Tensor, *, num_iterations: int, theta: float | Tensor,
                      lambda_: float | Tensor, tau: float | Tensor, chunk_pixels: int = 65536) -> Tensor:
    """:func:`tvl1_flow` without autograd, with preallocated buffers and in-place ops, over chunks of frame
    pairs that stay in cache: the PyTorch fallback of the fused kernel. Same ``[N, H, W]`` -> ``[N, 2, H, W]``.
    The constants are floats or 0-d tensors on the frames' device (never read back to the host)."""
    theta = (theta.abs() if isinstance(theta, Tensor) else abs(theta)) + 1e-12
    threshold, step_scale = lambda_ * theta, tau / theta
    n, height, width = first.shape
    flow = first.new_empty(n, 2, height, width)
    per_chunk = max(1, chunk_pixels // (height * width))
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        flow[start:stop] = _tvl1_chunk_inplace(first[start:stop], second[start:stop], num_iterations, theta,
                                               threshold, step_scale)
    return flow


def _tvl1_chunk_inplace(first: Tensor, second: Tensor, num_iterations: int, theta: float | Tensor,
                        threshold: float | Tensor, step_scale: float | Tensor) -> Tensor:
    grad_x, grad_y = central_gradient(second)
    image_grad = torch.stack([grad_x, grad_y], dim=1)
    grad_sq = (grad_x * grad_x + grad_y * grad_y + 1e-12).unsqueeze(1)
    rho_c = (second - first).unsqueeze(1)
    n, height, width = first.shape
    flow = first.new_zeros(n, 2, height, width)
    dual_x, dual_y = first.new_zeros(n, 2, height, width), first.new_zeros(n, 2, height, width)
    product, div, div_y = torch.empty_like(flow), torch.empty_like(flow), torch.empty_like(flow)
    flow_dx, flow_dy, scale = torch.empty_like(flow), torch.empty_like(flow), torch.empty_like(flow)
    step = first.new_empty(n, 1, height, width)
    for _ in range(num_iterations):
        torch.mul(image_grad, flow, out=product)
        torch.sum(product, dim=1, keepdim=True, out=step)
        step.add_(rho_c).add_(1e-12).div_(grad_sq).neg_()
        if isinstance(threshold, Tensor):
            torch.maximum(step, -threshold, out=step)
            torch.minimum(step, threshold, out=step)
        else:
            step.clamp_(-threshold, threshold)
        # backward-difference divergence of the duals (last column/row counted as zero)
        div[..., :-1].copy_(dual_x[..., :-1])
        div[..., -1].zero_()
        div[..., 1:].sub_(dual_x[..., :-1])
        div_y[..., :-1, :].copy_(dual_y[..., :-1, :])
        div_y[..., -1, :].zero_()
        div_y[..., 1:, :].sub_(dual_y[..., :-1, :])
        div.add_(div_y)
        flow.addcmul_(step, image_grad)
        if isinstance(theta, Tensor):
            flow.addcmul_(div, theta)
        else:
            flow.add_(div, alpha=theta)
        # forward differences, TF 'SAME' padding
        torch.sub(flow[..., 1:], flow[..., :-1], out=flow_dx[..., :-1])
        torch.neg(flow[..., -1], out=flow_dx[..., -1])
        torch.sub(flow[..., 1:, :], flow[..., :-1, :], out=flow_dy[..., :-1, :])
        torch.neg(flow[..., -1, :], out=flow_dy[..., -1, :])
        torch.mul(flow_dx, flow_dx, out=scale)
        scale.addcmul_(flow_dy, flow_dy).add_(1e-12).sqrt_().mul_(step_scale).add_(1.0)
        if isinstance(step_scale, Tensor):
            dual_x.addcmul_(flow_dx, step_scale).div_(scale)
            dual_y.addcmul_(flow_dy, step_scale).div_(scale)
        else:
            dual_x.add_(flow_dx, alpha=step_scale).div_(scale)
            dual_y.add_(flow_dy, alpha=step_scale).div_(scale)
    return flow


def central_gradient(image: Tensor) -> tuple[Tensor, Tensor]:
    """Image gradient with the [-0.5, 0, 0.5] kernel and zero padding (TF 'SAME'), along W and H."""
    padded_x = torch.nn.functional.pad(image, (1, 1))
    padded_y = torch.nn.functional.pad(image, (0, 0, 1, 1))
    return 0.5 * (padded_x[..., 2:] - padded_x[..., :-2]), 0.5 * (padded_y[..., 2:, :] - padded_y[..., :-2, :])


def forward_gradient(field: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences with the [-1, 1] kernel under TF 'SAME' padding: one zero after the end, so the
    last column/row gets ``-field`` there rather than 0 (this is what the reference computes)."""
    padded_x = torch.nn.functional.pad(field, (0, 1))
    padded_y = torch.nn.functional.pad(field, (0, 0, 0, 1))
    return padded_x[..., 1:] - padded_x[..., :-1], padded_y[..., 1:, :] - padded_y[..., :-1, :]


def divergence(field_x: Tensor, field_y: Tensor) -> Tensor:
    """Backward-difference divergence, the adjoint of :func:`forward_gradient` (the last column/row of the
    field is treated as zero)."""
    padded_x = torch.nn.functional.pad(field_x[..., :-1], (1, 1))
    padded_y = torch.nn.functional.pad(field_y[..., :-1, :], (0, 0, 1, 1))
    return (padded_x[..., 1:] - padded_x[..., :-1]) + (padded_y[..., 1:, :] - padded_y[..., :-1, :])
