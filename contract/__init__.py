"""The wire contract between edge nodes and central: event model, node status / camera health and
the MQTT topic tree.

Both sides import this package; nothing here does I/O.
"""

from contract.events import (
    SCHEMA_ID,
    Category,
    EvidenceRef,
    Location,
    ModelRef,
    ObjectRef,
    ViolationEvent,
    ViolationType,
    ZoneRef,
    category_of,
    event_json_schema,
    new_event_id,
)
from contract.status import (
    CAMERA_HEALTH_SCHEMA_ID,
    NODE_STATUS_SCHEMA_ID,
    CameraHealth,
    NodeStatus,
    camera_health_json_schema,
    node_status_json_schema,
)

__all__ = [
    "CAMERA_HEALTH_SCHEMA_ID",
    "NODE_STATUS_SCHEMA_ID",
    "SCHEMA_ID",
    "CameraHealth",
    "Category",
    "EvidenceRef",
    "Location",
    "ModelRef",
    "NodeStatus",
    "ObjectRef",
    "ViolationEvent",
    "ViolationType",
    "ZoneRef",
    "camera_health_json_schema",
    "category_of",
    "event_json_schema",
    "new_event_id",
    "node_status_json_schema",
]
