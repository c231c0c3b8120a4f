"""The web pages: server-rendered from the same data as their JSON twins under /api/."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.templating import Jinja2Templates

from printscp.http.auth import viewer

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False, dependencies=[Depends(viewer)])
