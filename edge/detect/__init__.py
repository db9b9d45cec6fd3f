"""Detection: a model family (YOLO: letterbox -> run -> decode + NMS) over a backend plug-in.

`base.Engine` is the small interface a backend implements (load a model file, run a blob, say
its input shape, metadata and what it runs on); `backends/` holds one module per backend,
registered by key (`onnxruntime` today; OpenVINO and TensorRT are one module each). `yolo.py` is
the runner the inference pool drives: `preprocess` (camera thread) -> `infer` (pool worker) ->
`decode` (pool worker).
"""
