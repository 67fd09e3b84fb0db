"""Privilege drop: user lookup here, the drop itself only ever in a child process."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tcpscope.cli import privileges
from tcpscope.errors import TcpscopeError, UsageError

NOBODY = pwd.getpwnam("nobody")


def require_root() -> None:
    """The real drop needs root: skip on a developer's machine, fail in CI."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail("privilege-drop tests must run as root in CI")
    pytest.skip("needs root")


def run_child(body: str) -> dict[str, Any]:
    """Run `body` in a fresh interpreter; it must print one JSON object last."""
    script = "import json, os\nfrom tcpscope.cli import privileges\n" + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- resolve_user ----------------------------------------------------------


def test_resolve_by_name() -> None:
    uid, gid, groups, name = privileges.resolve_user("nobody")
    assert (uid, gid, name) == (NOBODY.pw_uid, NOBODY.pw_gid, "nobody")
    assert gid in groups  # the primary group is part of the list given to setgroups
    assert len(groups) == len(set(groups))


def test_resolve_by_number() -> None:
    assert privileges.resolve_user(str(NOBODY.pw_uid))[0] == NOBODY.pw_uid
    assert privileges.resolve_user(str(NOBODY.pw_uid))[3] == NOBODY.pw_name
    uid, gid, groups, name = privileges.resolve_user("0")
    assert (uid, gid, name) == (0, 0, "root")
    assert 0 in groups


def test_resolve_user_gets_supplementary_groups() -> None:
    # root is in at least its own group; compare with what the kernel would get
    _, _, groups, _ = privileges.resolve_user("root")
    assert set(groups) == set(os.getgrouplist("root", 0))


@pytest.mark.parametrize(
    "spec", ["no-such-user-tcpscope", "", "4294967294999", "-1", "nobody ", "1e3"]
)
def test_resolve_unknown_user(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        privileges.resolve_user(spec)
    assert str(err.value) == f"unknown user '{spec}'"


# -- drop_privileges: the verification logic, with every os call faked ----------


class FakeOs:
    """Stands in for the id calls so the test process keeps its own ids."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, euid: int = 0) -> None:
        self.uid = self.euid = euid
        self.gid = self.egid = 0
        self.groups: list[int] = [0]
        self.calls: list[str] = []
        self.regain_allowed = False
        self.uid_sticks = True
        for name in ("getuid", "geteuid", "getgid", "getegid", "getgroups"):
            monkeypatch.setattr(os, name, getattr(self, name))
        for name in ("setgroups", "setgid", "setuid"):
            monkeypatch.setattr(os, name, getattr(self, name))

    def getuid(self) -> int:
        return self.uid

    def geteuid(self) -> int:
        return self.euid

    def getgid(self) -> int:
        return self.gid

    def getegid(self) -> int:
        return self.egid

    def getgroups(self) -> list[int]:
        return list(self.groups)

    def setgroups(self, groups: list[int]) -> None:
        self.calls.append("setgroups")
        if self.euid != 0:
            raise PermissionError(1, "Operation not permitted")
        self.groups = list(groups)

    def setgid(self, gid: int) -> None:
        self.calls.append(f"setgid({gid})")
        if self.euid != 0:
            raise PermissionError(1, "Operation not permitted")
        self.gid = self.egid = gid

    def setuid(self, uid: int) -> None:
        self.calls.append(f"setuid({uid})")
        if self.euid != 0 and not (uid == 0 and self.regain_allowed):
            raise PermissionError(1, "Operation not permitted")
        if self.uid_sticks:
            self.uid = self.euid = uid


def test_drop_order_and_success(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch)
    privileges.drop_privileges(65534, 65533, [65533, 100], user="nobody")
    # groups before gid before uid; then the one failed attempt to regain root
    assert fake.calls == ["setgroups", "setgid(65533)", "setuid(65534)", "setuid(0)"]
    assert (fake.uid, fake.euid, fake.gid, fake.egid) == (65534, 65534, 65533, 65533)
    assert fake.groups == [65533, 100]


def test_drop_fails_when_root_can_be_regained(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch)
    fake.regain_allowed = True
    with pytest.raises(TcpscopeError) as err:
        privileges.drop_privileges(65534, 65534, [65534], user="nobody")
    assert str(err.value) == "cannot drop privileges to nobody: root could be regained after setuid"


def test_drop_fails_when_uid_did_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch)
    fake.uid_sticks = False
    with pytest.raises(TcpscopeError) as err:
        privileges.drop_privileges(65534, 65534, [65534])
    assert str(err.value).startswith("cannot drop privileges to 65534: uid is 0/0")


def test_drop_reports_the_os_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch)

    def refuse(gid: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setgid", refuse)
    with pytest.raises(TcpscopeError) as err:
        privileges.drop_privileges(65534, 65534, [], user="nobody")
    assert str(err.value) == "cannot drop privileges to nobody: Operation not permitted"
    assert "setuid(65534)" not in fake.calls  # stopped at the first failure


def test_not_root_refuses_other_user(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=1000)
    with pytest.raises(TcpscopeError) as err:
        privileges.drop_privileges(65534, 65534, [65534], user="nobody")
    assert str(err.value) == "cannot drop privileges to nobody: not running as root"
    assert fake.calls == []


def test_not_root_same_user_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=1000)
    fake.gid = fake.egid = 1000
    privileges.drop_privileges(1000, 1000, [1000])
    assert fake.calls == []


# -- drop_privileges for real, in a child ------------------------------------


def test_real_drop_to_nobody() -> None:
    require_root()
    result = run_child(
        """
        uid, gid, groups, name = privileges.resolve_user("nobody")
        privileges.drop_privileges(uid, gid, groups, user=name)
        try:
            os.setuid(0)
            regained = True
        except PermissionError:
            regained = False
        print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                          "groups": os.getgroups(), "regained": regained}))
        """
    )
    assert result["uid"] == NOBODY.pw_uid != 0
    assert result["euid"] == NOBODY.pw_uid
    assert result["gid"] == NOBODY.pw_gid
    assert 0 not in result["groups"]  # root's group is gone
    assert result["regained"] is False


def test_real_drop_sets_supplementary_groups() -> None:
    require_root()
    result = run_child(
        f"""
        privileges.drop_privileges({NOBODY.pw_uid}, {NOBODY.pw_gid}, [{NOBODY.pw_gid}, 4242])
        print(json.dumps({{"groups": os.getgroups(), "uid": os.getuid()}}))
        """
    )
    assert sorted(result["groups"]) == sorted({NOBODY.pw_gid, 4242})
    assert result["uid"] == NOBODY.pw_uid


def test_real_second_drop_after_dropping_fails() -> None:
    require_root()
    result = run_child(
        f"""
        from tcpscope.errors import TcpscopeError
        privileges.drop_privileges({NOBODY.pw_uid}, {NOBODY.pw_gid}, [{NOBODY.pw_gid}])
        try:
            privileges.drop_privileges(0, 0, [0], user="root")
            message = ""
        except TcpscopeError as exc:
            message = str(exc)
        print(json.dumps({{"message": message, "uid": os.getuid()}}))
        """
    )
    assert result["message"] == "cannot drop privileges to root: not running as root"
    assert result["uid"] == NOBODY.pw_uid
