"""What the admin adds to the state database: an enrolled phone's lines, when each phone's
digest last changed; and the enrolled records the catalog gets from them."""

from __future__ import annotations

import json
from pathlib import Path

from phoneprov.site import enrolled_records
from phoneprov.state.db import State

MAC = "000952ABCDEF"


def test_enrolled_lines_reach_the_enrolled_records(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    line = {"username": "250", "password": "pw", "registrar": "pbx.lan"}
    with State(path) as state:
        state.enrol(MAC, "D200", "default", 1.0)
        state.set_enrolled_lines(MAC, json.dumps([line]))
        state.set_enrolled_lines("000952000001", json.dumps([line]))  # not enrolled: ignored
        assert state.enrolled_lines() == {MAC: json.dumps([line])}
    [record] = enrolled_records(path)
    assert record.fields == {"mac": MAC, "type": "D200", "profile": "default", "lines": [line]}


def test_rendered_at_changes_with_the_digest_only(tmp_path: Path) -> None:
    with State(tmp_path / "state.db") as state:
        state.record_rendered({MAC: "a"}, 10.0)
        state.record_rendered({MAC: "a"}, 20.0)
        assert state.rendered_at() == {MAC: 10.0}
        state.record_rendered({MAC: "b"}, 30.0)
        assert state.rendered_at() == {MAC: 30.0}


def test_unreadable_enrolled_lines_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with State(path) as state:
        state.enrol(MAC, "D200", "default", 1.0)
        state.set_enrolled_lines(MAC, "{not json")
    [record] = enrolled_records(path)
    assert record.fields == {"mac": MAC, "type": "D200", "profile": "default"}
