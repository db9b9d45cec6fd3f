"""OpenVINO backend: the ONNX weights read directly (no conversion step) and compiled for the CPU,
in FP32 or with BF16 inference precision on CPUs that have BF16 matrix units (AMX, AVX-512 BF16),
where YOLO11n ran 1.7x faster than ONNX Runtime FP32 on one thread (platform notes).

`precision: auto` takes BF16 where the CPU reports it (OpenVINO's OPTIMIZATION_CAPABILITIES) and
FP32 elsewhere. `int8-decode` / `int8-head` / `int8-ac` run the INT8 IR that
`python -m models build-openvino-int8` made from this very ONNX file (models/openvino_int8.py; its
manifest is checked first): nncf builds it offline, this backend needs only openvino to load it. The `openvino` package is optional: without it this backend is listed but
refuses to open, saying how to install it. A model with dynamic height/width is compiled once per
input shape it is given (a camera's letterbox size is fixed, so once per camera size), since
OpenVINO's CPU plugin runs a static shape faster than a dynamic one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.base import BackendSpec, DetectorError, register_backend

INT8_VARIANTS = ("int8-decode", "int8-head", "int8-ac")  # models.openvino_int8.VARIANTS
PRECISIONS = ("auto", "fp32", "bf16", *INT8_VARIANTS)
# An INT8 IR's floating-point parts (kept FP on purpose) run in f32, not in the CPU's BF16 default.
_HINT = {"fp32": "f32", "bf16": "bf16", **{v: "f32" for v in INT8_VARIANTS}}


def available() -> bool:
    """Whether the openvino package can be imported here."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def cpu_has_bf16(core: Any | None = None) -> bool:
    """The CPU can run BF16 inference in OpenVINO (AMX or AVX-512 BF16)."""
    if not available():
        return False
    import openvino as ov

    core = core or ov.Core()
    try:
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:
        return False


def int8_ir_ready(model_path: Path, variant: str) -> bool:
    """An INT8 IR of `variant` made from this model file is in the model cache and matches its manifest."""
    from models.openvino_int8 import verified_ir

    try:
        verified_ir(model_path, variant)
    except (FileNotFoundError, ValueError):
        return False
    return True


def resolve_precision(precision: str, bf16: bool) -> str:
    """`auto` -> bf16 where the CPU has it, else fp32; an explicit bf16 on a CPU without it is an error
    (it would run, emulated, slower than fp32)."""
    if precision not in PRECISIONS:
        raise DetectorError(f"detector.precision {precision!r}: the openvino backend runs {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16 else "fp32"
    if precision == "bf16" and not bf16:
        raise DetectorError(
            "detector.precision bf16: this CPU has no BF16 units (AMX / AVX-512 BF16); use fp32 or auto"
        )
    return precision


def onnx_metadata(model_path: Path) -> dict[str, str]:
    """The export's custom metadata (Ultralytics: names, stride, imgsz), read from the ONNX file."""
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


class OvEngine:
    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 1,
        providers: list[str] | None = None,
        precision: str = "auto",
        device: str = "CPU",
    ) -> None:
        if providers:
            raise DetectorError("detector.providers are ONNX Runtime's; the openvino backend takes `precision`")
        if not available():
            raise DetectorError(
                "detector backend openvino: the openvino package is not installed (pip install 'ioc-edge[openvino]')"
            )
        import openvino as ov

        self._core = ov.Core()
        self.precision = resolve_precision(precision, cpu_has_bf16(self._core))
        network = model_path
        if self.precision in INT8_VARIANTS:
            from models.openvino_int8 import verified_ir

            try:
                network = verified_ir(model_path, self.precision)
            except (FileNotFoundError, ValueError) as e:
                raise DetectorError(f"detector.precision {self.precision}: {e}") from None
        self.model_file = network
        self._model = self._core.read_model(str(network))
        self._config = {
            "INFERENCE_NUM_THREADS": int(threads),
            "INFERENCE_PRECISION_HINT": _HINT[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self._device = device
        self.metadata = onnx_metadata(model_path)
        shape = self._model.inputs[0].get_partial_shape()
        self.input_shape = tuple(d.get_length() if d.is_static else "?" for d in shape)
        self._static = shape.is_static
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._lock = threading.Lock()
        self.device = f"OpenVINO:{device}"
        what = f"INT8 IR {network.name}, FP parts in FP32" if network != model_path else self.precision.upper()
        self.why = f"OpenVINO {ov.__version__} on {device}, {what} inference precision" + (
            " (auto: the CPU has BF16 units)" if precision == "auto" and self.precision == "bf16" else ""
        )
        if self._static:
            self._request_for(tuple(int(d) for d in self.input_shape))  # compile now: a bad model fails at start

    def _request_for(self, shape: tuple[int, ...]) -> Any:
        with self._lock:
            req = self._compiled.get(shape)
            if req is None:
                model = self._model
                if not self._static:
                    model = model.clone()
                    model.reshape({model.inputs[0]: list(shape)})
                compiled = self._core.compile_model(model, self._device, self._config)
                req = self._compiled[shape] = compiled.create_infer_request()
            return req

    def run(self, blob: np.ndarray) -> np.ndarray:
        req = self._request_for(tuple(blob.shape))
        req.infer({0: np.ascontiguousarray(blob, dtype=np.float32)})
        return np.array(req.get_output_tensor(0).data, copy=True)


register_backend(
    BackendSpec(
        key="openvino",
        open=OvEngine,
        description="OpenVINO on the CPU: FP32, BF16 on CPUs with AMX / AVX-512 BF16 (precision: auto), "
        "or an NNCF INT8 IR (precision: int8-*)",
        module=__name__,
    )
)
