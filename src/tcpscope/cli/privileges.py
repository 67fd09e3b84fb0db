"""Dropping root after the capture is open (tcpeek `-u USER`).

The capture handle is opened as root; everything after that (decoding, the
statistics socket, logging) runs as the named user with that user's groups.
"""

from __future__ import annotations

import os
import pwd

from tcpscope.errors import TcpscopeError, UsageError


def resolve_user(spec: str) -> tuple[int, int, list[int], str]:
    """A user name or a numeric uid → (uid, primary gid, group ids, name).

    A name is looked up first, so a user literally named "1000" still wins
    over uid 1000.  The group list comes from the group database and includes
    the primary group.
    """
    entry = _lookup(spec)
    if entry is None:
        raise UsageError(f"unknown user '{spec}'")
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    # Keep the kernel's list short and free of repeats; order does not matter.
    unique = sorted(set(groups))
    return entry.pw_uid, entry.pw_gid, unique, entry.pw_name


def _lookup(spec: str) -> pwd.struct_passwd | None:
    if not spec:
        return None
    try:
        return pwd.getpwnam(spec)
    except KeyError:
        pass
    if spec.isdigit():
        try:
            return pwd.getpwuid(int(spec))
        except (KeyError, OverflowError):
            return None
    return None


def drop_privileges(uid: int, gid: int, groups: list[int], user: str | None = None) -> None:
    """Become `uid`/`gid` with supplementary `groups`, for good.

    Groups go first and the uid last: once the uid is no longer root the
    process may not change its groups any more.  Afterwards the result is
    checked, including that root cannot be taken back, because a half-done
    drop is worse than a loud failure.  `user` only names the target in
    error messages (defaults to the uid).
    """
    who = user if user is not None else str(uid)

    def fail(reason: str) -> TcpscopeError:
        return TcpscopeError(f"cannot drop privileges to {who}: {reason}")

    if os.geteuid() != 0:
        if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) == (uid, uid, gid, gid):
            return  # already that user: nothing to drop
        raise fail("not running as root")

    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from exc
    except (OverflowError, ValueError) as exc:  # an id out of range
        raise fail(str(exc)) from exc

    if os.getuid() != uid or os.geteuid() != uid:
        raise fail(f"uid is {os.getuid()}/{os.geteuid()} after setuid({uid})")
    if os.getgid() != gid or os.getegid() != gid:
        raise fail(f"gid is {os.getgid()}/{os.getegid()} after setgid({gid})")
    if set(os.getgroups()) != set(groups):
        raise fail("supplementary groups were not set")
    if uid != 0 and _can_regain_root():
        raise fail("root could be regained after setuid")


def _can_regain_root() -> bool:
    try:
        os.setuid(0)
    except OSError:
        return False
    return True
