"""Dependencies shared by console's JSON routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import AwareDatetime

from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput

# Ops data is for managers (admins are always admitted).
Manager = Annotated[Principal, Depends(require_roles("manager"))]


class TimeWindow:
    """``?from=&to=`` as timezone-aware ISO 8601 datetimes; ``from`` may not pass ``to``."""

    def __init__(
        self,
        window_from: Annotated[
            AwareDatetime | None,
            Query(alias="from", description="inclusive, ISO 8601 with a UTC offset"),
        ] = None,
        window_to: Annotated[
            AwareDatetime | None,
            Query(alias="to", description="exclusive, ISO 8601 with a UTC offset"),
        ] = None,
    ) -> None:
        if window_from is not None and window_to is not None and window_from > window_to:
            raise InvalidInput.field("from", "must not be after 'to'")
        self.start: datetime | None = window_from
        self.end: datetime | None = window_to


Window = Annotated[TimeWindow, Depends()]
