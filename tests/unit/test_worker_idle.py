"""What --idle-only measures: input interrupts, other programs' CPU, and the decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstudio.worker import idle
from vstudio.worker.client import ManagerAway, retrying

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


def test_idle_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    irq = [100]
    cpu = [(0, 0)]
    monkeypatch.setattr(idle, "_input_interrupts", lambda *a: irq[0])
    monkeypatch.setattr(idle, "_cpu_times", lambda *a: cpu[0])
    monkeypatch.delenv("DISPLAY", raising=False)
    clock = [1000.0]
    monkeypatch.setattr(idle.time, "monotonic", lambda: clock[0])
    m = idle.IdleMonitor(idle_after=60, cpu_limit=30)
    clock[0] += 30
    assert not m.idle(rendering=False) and "input 30 s ago" in m.reason
    clock[0] += 40
    cpu[0] = (10, 100)  # others used 10% since the last look
    assert m.idle(rendering=False) and m.reason == "idle"
    cpu[0] = (90, 200)  # 80% busy: someone is compiling
    assert not m.idle(rendering=False) and "CPU" in m.reason
    assert m.idle(rendering=True)  # our own render's CPU does not count
    irq[0] = 101  # a key was pressed
    assert not m.idle(rendering=True)


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
