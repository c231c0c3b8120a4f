"""One pynetdicom handler per DIMSE-N event, dispatched by SOP Class.

pynetdicom binds a single handler to each intervention event (EVT_N_CREATE,
EVT_N_SET, EVT_N_ACTION...), but Print Management, MPPS and Storage Commitment all
use them.  :func:`combine` builds the event handler list so each service keeps its
own plain handler function, chosen by the request's SOP Class UID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: Where each DIMSE-N request names its SOP Class.
_CLASS_FIELD = {"EVT_N_CREATE": "AffectedSOPClassUID", "EVT_N_SET": "RequestedSOPClassUID",
                "EVT_N_ACTION": "RequestedSOPClassUID", "EVT_N_DELETE": "RequestedSOPClassUID",
                "EVT_N_GET": "RequestedSOPClassUID",
                "EVT_N_EVENT_REPORT": "AffectedSOPClassUID"}

Bound = tuple[Any, Callable[..., Any], list[Any]]


def combine(default: Iterable[Bound], by_class: dict[str, Iterable[Bound]]) -> list[Bound]:
    """Handlers of ``default`` (Print Management), with the DIMSE-N ones of each SOP
    Class in ``by_class`` taking over requests for that class."""
    from pynetdicom import evt

    names = {getattr(evt, name): name for name in _CLASS_FIELD}
    routes: dict[Any, dict[str, tuple[Callable[..., Any], list[Any]]]] = {}
    out: list[Bound] = []
    for sop_class, bound in by_class.items():
        for event, fn, args in bound:
            if event in names:
                routes.setdefault(event, {})[sop_class] = (fn, args)
            else:
                out.append((event, fn, args))
    for event, fn, args in default:
        table = routes.pop(event, None)
        if table is None:
            out.append((event, fn, args))
            continue
        out.append((event, _router(names[event], table, fn, args), []))
    for event, table in routes.items():  # classes whose event the default lacks
        out.append((event, _router(names[event], table, None, []), []))
    return out


def _router(name: str, table: dict[str, tuple[Callable[..., Any], list[Any]]],
            default: Callable[..., Any] | None, default_args: list[Any]) -> Callable[..., Any]:
    field = _CLASS_FIELD[name]

    def route(event: Any) -> Any:
        sop_class = str(getattr(event.request, field, "") or "")
        fn, args = table.get(sop_class, (default, default_args))
        if fn is None:
            return 0x0118, None  # No such SOP Class
        return fn(event, *args)

    route.__name__ = f"route_{name.lower()}"
    return route
