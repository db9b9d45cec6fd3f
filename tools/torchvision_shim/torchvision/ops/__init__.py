"""`nms` and `batched_nms` with torchvision's signatures and results, in plain torch (+ numpy for the greedy pass).

Exact greedy NMS: boxes are taken by decreasing score; a box is dropped when its IoU with a box
already kept is > iou_threshold. The pairwise IoUs are computed at once with torch; the greedy pass
runs over a boolean matrix in numpy (a few microseconds per box, where a loop of torch ops costs
tens). Above MATRIX_MAX boxes (the matrix would be large) it goes box by box in torch instead.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["batched_nms", "nms"]

MATRIX_MAX = 4096  # boxes; the IoU matrix is MATRIX_MAX**2 floats at most (64 MB)


def _empty(boxes: torch.Tensor) -> torch.Tensor:
    return torch.empty((0,), dtype=torch.int64, device=boxes.device)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, as torchvision.ops.nms.

    boxes: (N, 4) x1, y1, x2, y2; scores: (N,). Returns the int64 indices of the kept boxes, by
    decreasing score.
    """
    if boxes.numel() == 0:
        return _empty(boxes)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].float()
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    n = b.shape[0]
    if n <= MATRIX_MAX:
        w = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :])).clamp(min=0)
        h = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[:, None] + areas[None, :] - inter).clamp(min=torch.finfo(torch.float32).tiny)
        over = (iou > iou_threshold).cpu().numpy()
        removed = np.zeros(n, dtype=bool)
        keep = []
        for i in range(n):
            if removed[i]:
                continue
            keep.append(i)
            removed |= over[i]
        kept = torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)
        return order[kept]
    # Many boxes: one torch pass per kept box over the boxes still in play.
    rest = torch.arange(n, device=boxes.device)
    keep_t: list[torch.Tensor] = []
    while rest.numel():
        i = rest[0]
        keep_t.append(i)
        rest = rest[1:]
        if not rest.numel():
            break
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=torch.finfo(torch.float32).tiny)
        rest = rest[iou <= iou_threshold]
    return order[torch.stack(keep_t)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Per-category NMS (boxes of different `idxs` never suppress each other), as torchvision.ops.batched_nms."""
    if boxes.numel() == 0:
        return _empty(boxes)
    # The coordinate trick torchvision uses: move each category's boxes apart so they cannot overlap.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
