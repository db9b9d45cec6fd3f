"""One router per concern of the console; `central.web.app` includes them in this order."""

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1
"""Largest row id either database stores: a larger one is a 422, not an OverflowError (a 500)."""

RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A row id in a URL path (issue 18, defect 10: `/public/reports/<30 digits>` was a 500)."""
