"""Where each device stands: its last test, when the next one is due, whether it is late.

A QA program is a schedule: a test keeps a device current for the interval its criteria
set gives (:func:`calibration.qa.criteria.constancy_interval`), after which a constancy
test is overdue.  ``qa status`` and the console's Printers page ask this for every device
at once, so it reads each device's last test only (:meth:`QAStore.latest`, one query)
and never a history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from calibration.qa.devices import Device
from calibration.qa.results import TestKind
from calibration.qa.store import QAStore, TestRecord

#: (criteria, kind of the last test) -> how long that test keeps the device current.
IntervalOf = Callable[[str, TestKind], timedelta]


@dataclass(frozen=True)
class DeviceStatus:
    """One device's standing at a moment.

    ``due`` is when the last test stops being current (None: never tested);
    ``overdue`` is true once ``due`` has passed, and for a device never tested (it
    still wants its acceptance test).
    """

    device: Device
    last: TestRecord | None
    due: datetime | None
    overdue: bool

    @property
    def never_tested(self) -> bool:
        return self.last is None

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {"device": self.device.to_json(),
                "last": None if last is None else {
                    "id": last.id, "when": last.when.isoformat(timespec="seconds"),
                    "kind": last.result.kind.value, "criteria": last.result.criteria,
                    "verdict": last.result.verdict.value, "operator": last.operator,
                    "failed": [f.key for f in last.result.failed]},
                "due": None if self.due is None else self.due.isoformat(timespec="seconds"),
                "overdue": self.overdue}


def _default_interval(criteria: str, kind: TestKind) -> timedelta:
    from calibration.qa.criteria import constancy_interval

    return constancy_interval(criteria, kind)


def device_status(store: QAStore, now: datetime | None = None, *,
                  intervals: Mapping[str, timedelta] | None = None,
                  interval_of: IntervalOf | None = None) -> list[DeviceStatus]:
    """Every device's status at ``now`` (an aware time; default now), by device id.

    The interval after a device's last test is the device's own ``interval_days``
    when set (the site's schedule for it), else ``intervals[criteria]`` when given
    (a configured schedule), else ``interval_of(criteria, kind)`` (default
    :func:`calibration.qa.criteria.constancy_interval`), for the device's criteria
    and the last test's kind.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now {now.isoformat()} has no time zone")
    interval_of = interval_of or _default_interval
    overrides = dict(intervals or {})
    latest = store.latest()
    out = []
    for device in store.devices():
        last = latest.get(device.id)
        if last is None:
            out.append(DeviceStatus(device, None, None, True))
            continue
        interval = (timedelta(days=device.interval_days) if device.interval_days else
                    overrides.get(device.criteria) or interval_of(device.criteria,
                                                                  last.result.kind))
        due = last.when + interval
        out.append(DeviceStatus(device, last, due, now > due))
    return out
