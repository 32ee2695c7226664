"""The runner behind dnsmasq, kamailio and baresip, with a harmless local `python3 -c`."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.phone.process import LineProcess, ProcessError, in_netns

# prints "ready", then "term" for each SIGTERM, which it ignores: only SIGKILL ends it
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: print("term", flush=True))
print("ready", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def proc() -> Iterator[LineProcess]:
    runner = LineProcess(None)
    yield runner
    runner.halt(2.0)


def test_in_netns() -> None:
    assert in_netns(None, ["true"]) == ["true"]
    assert in_netns("ns1", ["true", "-x"]) == ["ip", "netns", "exec", "ns1", "true", "-x"]


def test_lines_are_collected_and_waited_for(proc: LineProcess, tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    code = "import sys; print('one'); print('two', file=sys.stderr); print('three')"
    proc.spawn([sys.executable, "-c", code], log=log)
    assert proc.wait_for_line(r"^thr", timeout=10) == "three"
    assert proc.wait_for_line("one", timeout=10) == "one"  # a line already seen counts
    with pytest.raises(ProcessError, match="exited"):  # its output has ended
        proc.wait_for_line("four", timeout=10)
    proc.halt(2.0)
    assert proc.lines == ["one", "two", "three"]
    assert log.read_text() == "one\ntwo\nthree\n"  # as printed
    assert not proc.alive()


def test_exit_before_the_line_is_an_error(proc: LineProcess) -> None:
    proc.spawn([sys.executable, "-c", "print('bye')"])
    with pytest.raises(ProcessError, match=r"process exited \(waiting for 'never'\):\nbye$"):
        proc.wait_for_line("never", timeout=10)


def test_timeout_is_an_error_and_wait_for_gives_none(proc: LineProcess) -> None:
    proc.spawn([sys.executable, "-c", STUBBORN])
    proc.wait_for_line("^ready$", timeout=10)
    with pytest.raises(ProcessError, match=r"did not log it within 0.05 s \(waiting for 'x'\)"):
        proc.wait_for_line("x", timeout=0.05)
    assert proc.wait_for(lambda lines: None, 0.05, "nothing") is None
    assert proc.wait_for(lambda lines: len(lines) or None, 0.05, "a line") == 1
    assert proc.alive()


def test_halt_terms_once_per_wait_then_kills(proc: LineProcess) -> None:
    proc.spawn([sys.executable, "-c", STUBBORN])
    proc.wait_for_line("^ready$", timeout=10)
    pid = proc.pid
    assert proc.halt(0.2, 0.2) == -signal.SIGKILL
    assert proc.lines == ["ready", "term", "term"]
    assert proc.pid == pid and not proc.alive()
    with pytest.raises(ProcessError, match="already started"):
        proc.spawn([sys.executable, "-c", "pass"])
    proc.forget()
    assert proc.lines == []
    proc.spawn([sys.executable, "-c", "print('again')"])
    assert proc.wait_for_line("again", timeout=10) == "again"


def test_not_started_and_cannot_start(tmp_path: Path) -> None:
    runner = LineProcess()
    with pytest.raises(ProcessError, match="process not started"):
        _ = runner.pid
    assert runner.halt(1.0) is None and not runner.alive()
    with pytest.raises(ProcessError, match="cannot start"):
        runner.spawn([str(tmp_path / "no-such-program")], log=tmp_path / "log")
    assert runner.lines == []


def test_a_subclass_names_itself_and_cleans_lines() -> None:
    class Shouty(LineProcess):
        name = "shouty"

        def _clean(self, line: str) -> str:
            return line.upper()

    runner = Shouty()
    try:
        runner.spawn([sys.executable, "-c", "print('hi')"])
        assert runner.wait_for_line("^HI$", timeout=10) == "HI"
        with pytest.raises(ProcessError, match=r"^shouty exited"):
            runner.wait_for_line("never", timeout=10)
    finally:
        runner.halt(2.0)
