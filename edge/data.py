"""Where the weights, videos and images live (EDGE_DATA_DIR) and where a node keeps its state.

The helpers live in `contract.paths` (central, models and pipelines use them too); this module is
the edge's name for them.
"""

from __future__ import annotations

from pathlib import Path

from contract.paths import data_dir, edge_state_dir, file_sha256, resolve_data_path, video_path, weights_path

__all__ = [
    "data_dir",
    "default_node_state_dir",
    "edge_state_dir",
    "file_sha256",
    "resolve_data_path",
    "video_path",
    "weights_path",
]


def default_node_state_dir(node_id: str) -> Path:
    """A node's outbox and evidence when its config names no `node.state_dir`: EDGE_STATE_DIR/<id>."""
    return edge_state_dir() / node_id
