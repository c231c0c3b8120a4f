"""In-process clients of the console, as a browser's page scripts send requests."""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():  # starlette's TestClient over httpx: a deprecation notice
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

#: The double-submit token console.js sends: the printscp_csrf cookie, echoed in a header.
CSRF = "t" * 43


def console_client(app: Any, **kwargs: Any) -> TestClient:
    """A TestClient of ``app`` that passes the CSRF check the way console.js does."""
    client = TestClient(app, **kwargs)
    client.cookies.set("printscp_csrf", CSRF)
    client.headers["X-CSRF-Token"] = CSRF
    return client
