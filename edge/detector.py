"""The detector as the rest of the edge imports it: the YOLO runner over a backend plug-in.

The code lives in `edge.detect` (`yolo.py` the runner, `base.py` the backend interface,
`backends/` one module per backend); these names stay importable from here.
"""

from edge.detect.backends.onnxruntime import KNOWN_PROVIDERS, PROVIDER_ORDER, choose_providers
from edge.detect.base import DetectorError
from edge.detect.yolo import Letterbox, YoloDetector, auto_input_size, boxed_to_blob, letterbox, to_blob

__all__ = [
    "KNOWN_PROVIDERS",
    "PROVIDER_ORDER",
    "DetectorError",
    "Letterbox",
    "YoloDetector",
    "auto_input_size",
    "boxed_to_blob",
    "choose_providers",
    "letterbox",
    "to_blob",
]
