"""TV-L1 optical flow in PyTorch for precomputing a dataset's flow: batched over frame pairs, on CPU threads
or a GPU.

The algorithm is the Dual TV-L1 of Zach, Pock & Bischof (2007) as OpenCV implements it
(``cv2.optflow.DualTVL1OpticalFlow``, after Sanchez, Meinhardt-Llopis & Facciolo, IPOL 2013): a coarse-to-fine
image pyramid; at each scale the second frame (and its gradient) is warped by the current flow several times,
and each warp runs the primal-dual iterations of the linearised problem (thresholding step, flow update,
dual update), stopped early when the flow no longer changes; a 5x5 median filter removes outliers between
warps. The hyper-parameters default to OpenCV's (tau 0.25, lambda 0.15, theta 0.3, epsilon 0.01). What
differs, for speed: the pyramid halves the size per scale (OpenCV: 0.8 over 5 scales), each warp runs at
most ``iterations`` (20) iterations (OpenCV: up to 10 x 30), and the median filter runs once per warp.

This is not the network's representation-flow layer (models/rep_flow.py: one scale, no warping, a fixed
number of iterations, differentiable); it is the offline estimator behind ``assemblenet flow --method
tvl1-torch``.

Sign convention as in :mod:`assemblenet.data.flow`: channel 0 is x (right positive), channel 1 is y (down
positive), in pixels, from the first frame of a pair to the second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from assemblenet.errors import DataError


@dataclass(frozen=True)
class TVL1Settings:
    """Hyper-parameters of :class:`TorchTVL1` (the first four and ``epsilon`` as in OpenCV)."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    epsilon: float = 0.01
    scale_step: float = 0.5
    min_size: int = 16           # coarsest scale: the shorter side stops shrinking below this
    max_scales: int = 6
    warps: int = 5
    iterations: int = 20         # at most, per warp
    check_every: int = 10        # convergence test (one host sync) every this many iterations
    median_size: int = 5         # 0 or 1 disables the median filter


class TorchTVL1:
    """Dual TV-L1 flow between frame pairs, batched.

    Args:
        device: ``'cpu'`` (uses ``torch.get_num_threads()`` threads) or a GPU such as ``'cuda'``.
        pairs_per_batch: frame pairs computed together (larger batches amortise per-op overhead; on a CPU,
            small batches stay in cache).
        settings: the algorithm's hyper-parameters.
    """

    def __init__(self, *, device: str | torch.device = "cpu", pairs_per_batch: int = 4,
                 settings: TVL1Settings | None = None) -> None:
        if pairs_per_batch < 1:
            raise DataError(f"pairs_per_batch must be >= 1, got {pairs_per_batch}")
        self.device = torch.device(device)
        self.pairs_per_batch = int(pairs_per_batch)
        self.settings = settings or TVL1Settings()

    def video_flow(self, grey_frames: np.ndarray) -> np.ndarray:
        """Flow between consecutive frames of a grey video ``uint8 [N, H, W]``: float32 ``[N - 1, H, W, 2]``."""
        frames = np.asarray(grey_frames)
        if frames.ndim != 3:
            raise DataError(f"expected grey frames [N, H, W], got shape {frames.shape}")
        if len(frames) < 2:
            raise DataError(f"flow needs at least 2 frames, got {len(frames)}")
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, torch.float32)
        fields = []
        for start in range(0, len(frames) - 1, self.pairs_per_batch):
            stop = min(len(frames) - 1, start + self.pairs_per_batch)
            fields.append(self.pairs(video[start:stop], video[start + 1:stop + 1]).permute(0, 2, 3, 1).cpu())
        return torch.cat(fields).numpy()

    @torch.no_grad()
    def pairs(self, first: Tensor, second: Tensor) -> Tensor:
        """Flow from ``first`` to ``second`` (grey ``[N, H, W]``, values in [0, 255]): ``[N, 2, H, W]``."""
        if first.shape != second.shape or first.dim() != 3:
            raise DataError(f"expected two [N, H, W] frame batches, got {list(first.shape)} and {list(second.shape)}")
        s = self.settings
        first_levels = _pyramid(first.float()[:, None], s)
        second_levels = _pyramid(second.float()[:, None], s)
        flow = None
        for level in range(len(first_levels) - 1, -1, -1):
            image0, image1 = first_levels[level], second_levels[level]
            height, width = image0.shape[-2:]
            if flow is None:
                flow = image0.new_zeros(image0.shape[0], 2, height, width)
            else:  # upsample the coarser flow and rescale its components to this scale's pixels
                scale_x, scale_y = width / flow.shape[-1], height / flow.shape[-2]
                flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
                flow[:, 0] *= scale_x
                flow[:, 1] *= scale_y
            flow = _solve_scale(image0, image1, flow, s)
        assert flow is not None  # the pyramid has at least one level
        return flow


def _pyramid(image: Tensor, s: TVL1Settings) -> list[Tensor]:
    levels = [image]
    while len(levels) < s.max_scales:
        height, width = levels[-1].shape[-2:]
        size = (round(height * s.scale_step), round(width * s.scale_step))
        if min(size) < s.min_size:
            break
        levels.append(F.interpolate(levels[-1], size=size, mode="bilinear", align_corners=False, antialias=True))
    return levels


def _central_gradient(image: Tensor) -> tuple[Tensor, Tensor]:
    """[-0.5, 0, 0.5] differences with replicated borders, as OpenCV's centeredGradient."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return (0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]),
            0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]))


def _warp(images: Tensor, flow: Tensor) -> Tensor:
    """Sample ``images`` [N, C, H, W] at x + flow (bicubic; zero outside the image, as OpenCV, so that pixels
    that leave the frame get no data term and take their flow from their neighbours)."""
    n, _, height, width = images.shape
    ys = torch.arange(height, device=images.device, dtype=images.dtype)
    xs = torch.arange(width, device=images.device, dtype=images.dtype)
    grid_x = (xs[None, None, :] + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    grid_y = (ys[None, :, None] + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack([grid_x, grid_y], dim=-1)
    return F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def _median(flow: Tensor, size: int, *, use_opencv: bool | None = None) -> Tensor:
    """``size`` x ``size`` median filter of each flow channel, replicated borders."""
    if use_opencv is None:  # OpenCV's float median is ~20x faster than unfold + median on a CPU
        use_opencv = flow.device.type == "cpu" and size in (3, 5)
    if use_opencv:
        import cv2

        planes = flow.reshape(-1, *flow.shape[-2:]).numpy()
        filtered = np.stack([cv2.medianBlur(plane, size) for plane in planes])
        return torch.from_numpy(filtered).view(flow.shape)
    half = size // 2
    padded = F.pad(flow, (half, half, half, half), mode="replicate")
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # [N, 2, H, W, size, size] (a view)
    return windows.reshape(*flow.shape, size * size).median(dim=-1).values


def _solve_scale(image0: Tensor, image1: Tensor, flow: Tensor, s: TVL1Settings) -> Tensor:
    """Warps and primal-dual iterations at one scale; ``image0/1`` are [N, 1, H, W], ``flow`` [N, 2, H, W]."""
    n, _, height, width = image0.shape
    grad_x, grad_y = _central_gradient(image1)
    source = torch.cat([image1, grad_x, grad_y], dim=1)
    flow = flow.contiguous()
    # The duals live in buffers with one extra zero column / row in front, so that the backward difference
    # of the divergence is one subtraction; the zero stays because nothing writes it.
    dual_x_padded = flow.new_zeros(n, 2, height, width + 1)
    dual_y_padded = flow.new_zeros(n, 2, height + 1, width)
    for _ in range(s.warps):
        warped = _warp(source, flow)
        grad_x, grad_y = warped[:, 1:2].contiguous(), warped[:, 2:3].contiguous()  # grad of image1 at x + flow
        # residual linearised at the current flow: rho(u) = rho_c + grad . u
        rho_c = warped[:, :1] - image0 - grad_x * flow[:, :1] - grad_y * flow[:, 1:]
        _iterate(flow, dual_x_padded, dual_y_padded, grad_x, grad_y, rho_c, s)
        if s.median_size > 1:
            flow = _median(flow, s.median_size)
    return flow


def _iterate(flow: Tensor, dual_x_padded: Tensor, dual_y_padded: Tensor, grad_x: Tensor, grad_y: Tensor,
             rho_c: Tensor, s: TVL1Settings) -> None:
    """Primal-dual iterations of one warp, in place on ``flow`` and the duals.

    Each pair stops when its flow changes by less than epsilon per pixel (OpenCV's criterion); finished pairs
    leave the batch, so a pair's flow does not depend on the pairs it is batched with."""
    n, _, height, width = flow.shape
    threshold, dual_step = s.lambda_ * s.theta, s.tau / s.theta
    tolerance = s.epsilon * s.epsilon * height * width  # on the sum of squared changes over the pair
    full = (flow, dual_x_padded, dual_y_padded)
    positions = None  # indices into ``full`` of the pairs still iterating, once some have left
    image_grad = torch.cat([grad_x, grad_y], dim=1)
    neg_inv_grad_sq = -1.0 / (grad_x * grad_x + grad_y * grad_y + 1e-10)

    def buffers(batch: int):
        shape = (batch, 2, height, width)
        # flow_dx / flow_dy: their last column / row stay zero (forward differences, zero at the far border)
        return (flow.new_zeros(shape), flow.new_zeros(shape), flow.new_empty(shape), flow.new_empty(shape),
                flow.new_empty(shape), flow.new_empty(batch, 1, height, width))

    flow_dx, flow_dy, div, norm, previous, step = buffers(n)
    for iteration in range(s.iterations):
        check = (iteration + 1) % s.check_every == 0 or iteration + 1 == s.iterations
        dual_x, dual_y = dual_x_padded[..., 1:], dual_y_padded[..., 1:, :]
        # thresholding: v = u + clamp(-rho / |grad|^2, -lambda theta, lambda theta) grad
        torch.addcmul(rho_c, grad_x, flow[:, :1], out=step)
        step.addcmul_(grad_y, flow[:, 1:]).mul_(neg_inv_grad_sq).clamp_(-threshold, threshold)
        if check:
            previous.copy_(flow)
        flow.addcmul_(step, image_grad)
        # u = v + theta div(p): backward differences, zero before the first column / row
        torch.sub(dual_x_padded[..., 1:], dual_x_padded[..., :-1], out=div)
        div.add_(dual_y_padded[..., 1:, :]).sub_(dual_y_padded[..., :-1, :])
        flow.add_(div, alpha=s.theta)
        # p = (p + tau/theta grad u) / (1 + tau/theta |grad u|)
        torch.sub(flow[..., 1:], flow[..., :-1], out=flow_dx[..., :-1])
        torch.sub(flow[..., 1:, :], flow[..., :-1, :], out=flow_dy[..., :-1, :])
        torch.hypot(flow_dx, flow_dy, out=norm)
        norm.mul_(dual_step).add_(1.0)
        dual_x.add_(flow_dx, alpha=dual_step).div_(norm)
        dual_y.add_(flow_dy, alpha=dual_step).div_(norm)
        if not check or iteration + 1 == s.iterations:
            continue
        converged = previous.sub_(flow).square_().sum(dim=(1, 2, 3)) <= tolerance
        if bool(converged.all()):
            break
        if bool(converged.any()):  # finished pairs leave the batch
            if positions is None:
                positions = torch.arange(n, device=flow.device)
                flow, dual_x_padded, dual_y_padded = (t.clone() for t in full)
            for target, source in zip(full, (flow, dual_x_padded, dual_y_padded)):
                target[positions[converged]] = source[converged]
            keep = ~converged
            positions = positions[keep]
            flow, dual_x_padded, dual_y_padded, grad_x, grad_y, rho_c, image_grad, neg_inv_grad_sq = (
                t[keep] for t in (flow, dual_x_padded, dual_y_padded, grad_x, grad_y, rho_c, image_grad,
                                  neg_inv_grad_sq))
            flow_dx, flow_dy, div, norm, previous, step = buffers(len(positions))
    if positions is not None:
        for target, source in zip(full, (flow, dual_x_padded, dual_y_padded)):
            target[positions] = source
