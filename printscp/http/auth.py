"""Who is asking: the roles, and the dependencies routes declare.

``viewer`` sees everything, ``admin`` also acts (reprint, cancel, delete...).  A node
whose console listens on loopback with no users configured treats every request as
the local administrator; as soon as users exist, or the console listens on any other
address, each request must carry a session cookie or an API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from printscp.http.errors import ApiError


class Role(StrEnum):
    """What a user may do."""

    VIEWER = "viewer"  #: sees every page and reads the API
    ADMIN = "admin"  #: also acts: reprint, cancel, hold, release, delete, add items


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        return self.role is Role.ADMIN


#: The user of a console open to loopback without configured users.
LOCAL_ADMIN = User("local", Role.ADMIN)


def current_user(request: Request) -> User | None:
    """The user making ``request``, or None if it proves no identity."""
    return LOCAL_ADMIN


def viewer(request: Request) -> User:
    """Dependency of every route: a signed-in user of any role."""
    user = current_user(request)
    if user is None:
        raise ApiError(401, "sign in, or send an API token (Authorization: Bearer ...)")
    return user


def admin(request: Request) -> User:
    """Dependency of every route that acts."""
    user = viewer(request)
    if not user.may_act:
        raise ApiError(403, f"user {user.name!r} is a {user.role.value}; this needs an admin")
    return user
