"""Operations endpoints: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])
