"""`core.plan`: the comparison of what is applied with what an apply would write."""

from __future__ import annotations

import json
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.dnsmasq_conf import tombstone
from phoneprov.core.inventory import Device
from phoneprov.core.plan import (
    MASK,
    DhcpFiles,
    compare_dhcp,
    compare_files,
    device_fields,
    make_plan,
)
from phoneprov.core.vocabulary import Key, Line, Settings

A, B, C = "00095200000A", "00095200000B", "00095200000C"


def host(mac: str, tag: str = "t1") -> str:
    return f"{mac.lower()},set:{tag}\n"


def opts(tag: str = "t1", url: str = "http://10.0.0.1") -> str:
    return f"tag:{tag},42,10.0.0.1\ntag:{tag},66,{url}\n"


def side(macs: list[str], **overrides: str) -> dict[str, dict[str, str]]:
    return {mac: {"type": "D200", "profile": "default", **overrides} for mac in macs}


def plan_of(**kw):  # type: ignore[no-untyped-def]
    """A plan where both sides are the same unless a keyword says otherwise."""
    macs = [A, B]
    dhcp = {m: DhcpFiles(host(m), opts()) for m in macs}
    files = {m: {"": "e", "device.xml": "d"} for m in macs}
    digests = {m: "x" for m in macs}
    args = {
        "fields_before": side(macs),
        "fields_after": side(macs),
        "files_before": files,
        "files_after": files,
        "dhcp_before": dhcp,
        "dhcp_after": dhcp,
        "digests_before": digests,
        "digests_after": digests,
        "leased": [A],
    }
    return make_plan(**(args | kw))


# hypothesis: a side against itself -----------------------------------------------------

text = st.text("ab*: é\n", max_size=8)
macs = st.lists(st.sampled_from([A, B, C]), unique=True)
field_values = st.dictionaries(st.sampled_from(["type", "vars.x", "lines[0].password"]), text)


@st.composite
def sides(draw: st.DrawFn) -> dict[str, object]:
    chosen = draw(macs)
    return {
        "fields": {m: draw(field_values) for m in chosen},
        "files": {m: draw(st.dictionaries(st.sampled_from(["", "a.xml"]), text)) for m in chosen},
        "dhcp": {m: DhcpFiles(draw(st.sampled_from([host(m), None])), opts()) for m in chosen},
        "digests": {m: draw(text) for m in chosen},
    }


@given(sides(), st.lists(st.sampled_from([A, B, C])))
def test_a_side_against_itself_is_no_change(s: dict, leased: list[str]) -> None:  # type: ignore[type-arg]
    dhcp = {m: f for m, f in s["dhcp"].items() if f.host is not None}
    plan = make_plan(
        fields_before=s["fields"],
        fields_after=s["fields"],
        files_before=s["files"],
        files_after=s["files"],
        dhcp_before=dhcp,
        dhcp_after=dhcp,
        digests_before=s["digests"],
        digests_after=s["digests"],
        leased=leased,
    )
    assert not plan.changed
    assert (plan.added, plan.removed, plan.updated, plan.check_sync) == ((), (), (), ())
    assert plan.as_json()["changed"] is False


secrets = st.from_regex(r"Zq[a-z0-9]{6}", fullmatch=True)  # nothing else looks like this


@given(secrets, secrets)
def test_secret_values_never_appear(old: str, new: str) -> None:
    before = side([A], **{"lines[0].password": old, "admin_password_hash": old})
    after = side([A], **{"lines[0].password": new, "admin_password_hash": new})
    plan = plan_of(fields_before=before, fields_after=after)
    shown = plan.text() + json.dumps(plan.as_json())
    assert "Zq" not in shown
    assert plan.changed == (old != new)
    if old != new:
        assert f"    lines[0].password: {MASK} -> {MASK}" in plan.text().splitlines()


# examples ------------------------------------------------------------------------------


def test_the_same_is_no_change() -> None:
    plan = plan_of()
    assert not plan.changed
    assert plan.text().splitlines() == [
        "no change",
        "plan: 0 added, 0 removed, 0 changed, 0 to check-sync",
    ]


def test_a_changed_field_and_file_with_and_without_lease() -> None:
    plan = plan_of(
        fields_after=side([A, B], profile="reception"),
        files_after={m: {"": "e", "device.xml": "d2"} for m in (A, B)},
        digests_after={A: "y", B: "y"},
    )
    assert plan.changed and [d.mac for d in plan.updated] == [A, B]
    assert plan.check_sync == (A,) and plan.no_lease == (B,)
    assert plan.updated[0].fields is not None
    assert [(f.path, f.old, f.new) for f in plan.updated[0].fields] == [
        ("profile", "default", "reception")
    ]
    assert plan.updated[0].files == ("device.xml",)
    lines = plan.text().splitlines()
    assert "    profile: default -> reception" in lines
    assert "    files: device.xml" in lines
    assert f"check-sync (apply --resync): {A}" in lines
    assert f"changed, no lease, so no check-sync: {B}" in lines


def test_added_and_removed_devices_with_their_dhcp_lines() -> None:
    plan = plan_of(
        fields_after=side([A, C]),
        dhcp_after={A: DhcpFiles(host(A), opts()), C: DhcpFiles(host(C, "t3"), opts("t3"))},
        files_after={A: {"": "e", "device.xml": "d"}, C: {"": "e"}},
        digests_after={A: "x", C: "z"},
        leased=[C],
    )
    assert [d.mac for d in plan.added] == [C] and [d.mac for d in plan.removed] == [B]
    assert plan.updated == ()
    assert plan.check_sync == (C,)  # a new device with a lease: `apply --resync` notifies it
    (gone,) = plan.removed
    assert [(c.directory, c.old, c.new) for c in gone.dhcp] == [
        ("dhcp-hostsdir", (host(B).strip(),), (tombstone(B).strip(),)),
        ("dhcp-optsdir", tuple(opts().splitlines()), ()),
    ]
    data = plan.as_json()
    assert data["added"] == [
        {
            "mac": C,
            "device": "",
            "fields": [],
            "files": [],
            "dhcp": [
                {"directory": "dhcp-hostsdir", "old": [], "new": [host(C, "t3").strip()]},
                {"directory": "dhcp-optsdir", "old": [], "new": opts("t3").splitlines()},
            ],
        }
    ]


def test_dhcp_lines_on_disk_that_differ_make_a_change() -> None:
    plan = plan_of(
        dhcp_before={A: DhcpFiles(host(A), opts(url="http://old")), B: DhcpFiles(host(B), opts())}
    )
    (changed,) = plan.updated
    assert changed.mac == A and changed.fields == () and changed.files == ()
    (line,) = changed.dhcp
    assert line.directory == "dhcp-optsdir"
    assert line.old == ("tag:t1,42,10.0.0.1", "tag:t1,66,http://old")
    assert line.new == ("tag:t1,42,10.0.0.1", "tag:t1,66,http://10.0.0.1")
    assert plan.check_sync == (A,)  # apply writes its files: `apply --resync` notifies


def test_unknown_before_sides_are_said_not_guessed() -> None:
    plan = plan_of(fields_before=None, files_before=None)
    assert not plan.changed
    assert plan.notes == ("the last apply recorded no inventory fields: field changes unknown",)
    digest_changed = plan_of(fields_before=None, files_before=None, digests_after={A: "x", B: "y"})
    (d,) = digest_changed.updated
    assert d.mac == B and d.fields is None and d.files is None
    text = digest_changed.text()
    assert "fields: unknown" in text and "files: unknown" in text


def test_never_applied_and_never_resynced() -> None:
    plan = plan_of(fields_before=None, files_before=None, dhcp_before={}, digests_before={})
    assert [d.mac for d in plan.added] == [A, B] and plan.check_sync == ()
    assert plan.notes == (
        "never applied: every device is new",
        "`apply --resync` has recorded nothing yet: its first run only records",
    )


def test_no_token_secret_yet_leaves_dhcp_lines_out() -> None:
    plan = plan_of(fields_before=None, dhcp_before={}, dhcp_after=None, digests_before={})
    assert [d.dhcp for d in plan.added] == [(), ()]
    assert any("token secret" in n for n in plan.notes)


def test_compare_files_and_dhcp_helpers() -> None:
    assert compare_files({"": "1", "a": "2", "gone": "3"}, {"": "1", "a": "9", "b": "4"}) == (
        "a",
        "b",
        "gone",
    )
    stone = DhcpFiles(tombstone(A), None)
    assert compare_dhcp(A, stone, None) == ()  # removed before: nothing left to do


def test_device_fields_flatten_effective_settings_and_hide_secrets() -> None:
    device = Device(
        A,
        "D200",
        "office",
        serial="S1",
        vars=MappingProxyType({"floor": 2}),
        settings=Settings(
            (Line("201", "pbx", password="pw", where="inv:3"),), (Key(3, "250", "Reception"),)
        ),
    )
    got = device_fields(device, lambda path, value: f"<{path}>")
    assert got["serial"] == "S1" and got["vars.floor"] == "2"
    assert got["lines[0].username"] == "201" and got["lines[0].password"] == "<lines[0].password>"
    assert "lines[0].where" not in got and "pw" not in got.values()
    assert got["keys[phone.3].target"] == "250" and got["keys[phone.3].label"] == "Reception"


def test_a_field_set_or_unset_is_null_on_the_other_side() -> None:
    plan = plan_of(fields_after={A: {"type": "D200", "vars.floor": "2"}, B: {"type": "D200"}})
    changes = {c["mac"]: c["fields"] for c in plan.as_json()["changes"]}
    assert changes[A] == [
        {"field": "profile", "old": "default", "new": None},
        {"field": "vars.floor", "old": None, "new": "2"},
    ]
