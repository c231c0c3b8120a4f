"""The archive API (issue 16 section 3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from printscp.http.auth import viewer

router = APIRouter(tags=["archive"], dependencies=[Depends(viewer)])
