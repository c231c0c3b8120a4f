"""Paging parameters shared by every list of the API and the pages.

An offset has an upper bound like the limit: SQLite takes OFFSET as a 64-bit integer,
and a larger one (``?offset=10000000000000000000``) failed the query with a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

#: Far beyond any table this node holds, and within every integer type on the way.
MAX_OFFSET = 2**31 - 1

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows skipped")]
