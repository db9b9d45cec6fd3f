"""NOT torchvision: a benchmark-only shim for Ultralytics in `.venv-baseline` (see pyproject.toml).

Provides `torchvision.ops.nms` and `torchvision.ops.batched_nms` in plain torch, nothing else.
"""

from torchvision import ops

__version__ = "0.28.0+iocshim"
__all__ = ["ops"]
