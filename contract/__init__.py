"""The wire contract between edge nodes and central: event model and MQTT topic tree.

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

__all__ = [
    "SCHEMA_ID",
    "Category",
    "EvidenceRef",
    "Location",
    "ModelRef",
    "ObjectRef",
    "ViolationEvent",
    "ViolationType",
    "ZoneRef",
    "category_of",
    "event_json_schema",
    "new_event_id",
]
