"""What --idle-only measures: input interrupts, other programs' CPU, and the decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstudio.client.manager import ManagerAway, retrying
from vstudio.worker import idle

INTERRUPTS = """           CPU0       CPU1
  1:         {kbd}          0   IO-APIC   1-edge      i8042
  8:          0          0   IO-APIC   8-edge      rtc0
 12:        {mouse}          3   IO-APIC  12-edge      i8042
 24:       5000       6000   PCI-MSI 512000-edge      ahci[0000:00:1f.2]
"""


def test_input_interrupts_count_only_input_devices(tmp_path: Path) -> None:
    p = tmp_path / "interrupts"
    p.write_text(INTERRUPTS.format(kbd=10, mouse=20))
    assert idle._input_interrupts(p) == 33
    p.write_text("           CPU0\n 24:  5000  PCI-MSI  ahci\n")
    assert idle._input_interrupts(p) is None  # no input device: this signal is absent
    assert idle._input_interrupts(tmp_path / "absent") is None


def test_cpu_times(tmp_path: Path) -> None:
    p = tmp_path / "stat"
    p.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
    assert idle._cpu_times(p) == (150, 1000)


class _Machine:
    """A machine whose clock, input interrupts and CPU counters the test moves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock, self.irq, self.cpu, self.own = 1000.0, 100, (0, 0), 0
        monkeypatch.setattr(idle, "_input_interrupts", lambda *a: self.irq)
        monkeypatch.setattr(idle, "_cpu_times", lambda *a: self.cpu)
        monkeypatch.setattr(idle, "_own_cpu", lambda: self.own)
        monkeypatch.setattr(idle, "_logind_session", lambda: None)
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.setattr(idle.time, "monotonic", lambda: self.clock)

    def run(self, seconds: float, busy_percent: float, ours: float = 0.0) -> None:
        """``seconds`` pass with all CPUs ``busy_percent`` busy, ``ours`` of it ours."""
        total = int(seconds * 100)
        self.clock += seconds
        self.cpu = (self.cpu[0] + int(total * busy_percent / 100), self.cpu[1] + total)
        self.own += int(total * ours / 100)


def test_idle_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _Machine(monkeypatch)
    mon = idle.IdleMonitor(idle_after=60, cpu_limit=30)
    m.run(30, 0)
    assert not mon.idle(rendering=False) and "input 30 s ago" in mon.reason
    m.run(40, 10)  # others used 10% since the last look
    assert mon.idle(rendering=False) and mon.reason == "idle"
    m.run(10, 80)  # 80% busy: someone is compiling
    assert not mon.idle(rendering=False) and "CPU" in mon.reason
    m.run(10, 100, ours=100)
    assert mon.idle(rendering=True)  # our own render's CPU does not count
    m.irq = 101  # a key was pressed
    assert not mon.idle(rendering=True)


def test_own_render_never_reads_as_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a render the machine is idle, and the warm Blender stays, every time."""
    m = _Machine(monkeypatch)
    mon = idle.IdleMonitor(idle_after=60, cpu_limit=30)
    m.run(120, 2)
    assert mon.idle(rendering=False)
    for _ in range(3):
        m.run(5, 100)  # rendering: the heartbeat looks while the task runs
        assert mon.idle(rendering=True)
        # the render ran on past the last heartbeat; its process is reaped only now
        m.run(4, 100, ours=0)
        m.own += 900
        assert mon.idle(rendering=False), mon.reason  # the old baseline is gone
        m.run(1, 0)
        assert mon.idle(rendering=False), mon.reason  # short windows mean nothing yet
    m.run(10, 90)  # then someone else takes the CPU while we wait for work
    assert not mon.idle(rendering=False) and "% CPU" in mon.reason
    m.run(10, 95, ours=90)  # our uploads and encoders are not someone else's
    assert mon.idle(rendering=False), mon.reason


def test_no_input_source_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _Machine(monkeypatch)
    m.irq = None  # type: ignore[assignment]  # no keyboard, mouse or HID interrupt line
    with pytest.raises(idle.IdleUnavailable, match="cannot tell whether the user is away"):
        idle.IdleMonitor()
    monkeypatch.setattr(idle, "_logind_session", lambda: "7")
    monkeypatch.setattr(idle, "_logind_idle_seconds", lambda s: 400.0)
    assert idle.IdleMonitor(idle_after=300).idle(rendering=False)


def test_retrying_backs_off_until_the_manager_answers() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ManagerAway("away")
        return "ok"

    waits: list[float] = []
    assert retrying(flaky, on_wait=lambda e, d: waits.append(d), max_delay=0.02) == "ok"
    assert len(calls) == 3 and waits == [0.02, 0.02]

    def down() -> str:
        raise ManagerAway("down")

    with pytest.raises(ManagerAway):
        retrying(down, give_up=0.0)
