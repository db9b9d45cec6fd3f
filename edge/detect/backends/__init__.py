"""Detector backends, one module each (registered with `edge.detect.base.register_backend`)."""
