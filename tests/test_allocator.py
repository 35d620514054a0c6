"""The allocator tuning of the ``diffhdr`` command: large tensors come from the heap, not fresh mappings."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from diffhdr_diffusers import allocator, cli

PROBE = """
import ctypes, sys, torch
from diffhdr_diffusers.allocator import reuse_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert reuse_freed_memory()
before = libc.mallinfo2().hblkhd
tensor = torch.ones(64 << 20, dtype=torch.uint8)  # a 64 MB activation-sized block
print(libc.mallinfo2().hblkhd - before)
"""


def mapped_bytes_of_a_64mb_tensor(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc >= 2.33")
def test_large_tensors_come_from_the_heap_once_tuned():
    assert mapped_bytes_of_a_64mb_tensor("default") >= 64 << 20  # glibc maps it afresh (and unmaps it on free)
    assert mapped_bytes_of_a_64mb_tensor("tuned") == 0  # served from the heap, kept for reuse


def test_without_mallopt_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: object())
    assert allocator.reuse_freed_memory() is False
    assert allocator.reusing_freed_memory() is False


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallopt"), reason="needs glibc")
def test_the_tuning_is_remembered():
    run = subprocess.run([sys.executable, "-c", "from diffhdr_diffusers import allocator as a; "
                          "print(a.reusing_freed_memory(), a.reuse_freed_memory(), a.reusing_freed_memory())"],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["False", "True", "True"], run.stderr


def test_the_installed_command_tunes_the_allocator_then_runs_main(monkeypatch):
    monkeypatch.delenv("DIFFHDR_REUSE_FREED_MEMORY", raising=False)
    (entry,) = entry_points(group="console_scripts", name="diffhdr")
    assert entry.load() is cli.console_main
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append("allocator") or True)
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append("main") or 0)
    assert cli.console_main() == 0 and calls == ["allocator", "main"]


def test_the_environment_variable_turns_the_command_s_tuning_off(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append("allocator") or True)
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append("main") or 0)
    monkeypatch.setenv("DIFFHDR_REUSE_FREED_MEMORY", "0")
    assert cli.console_main() == 0 and calls == ["main"]
    monkeypatch.setenv("DIFFHDR_REUSE_FREED_MEMORY", "1")
    assert allocator.configure_from_environment(default=False) and calls == ["main", "allocator"]


def test_a_bad_environment_value_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(cli, "main", lambda argv=None: pytest.fail("main ran"))
    monkeypatch.setenv("DIFFHDR_REUSE_FREED_MEMORY", "yes please")
    assert cli.console_main() == 2
    assert "DIFFHDR_REUSE_FREED_MEMORY must be 0 or 1" in capsys.readouterr().err


def test_cpu_window_budget_follows_the_tuning(monkeypatch):
    from diffhdr_diffusers.pipelines.memory import CPU_WINDOW_BUDGET

    monkeypatch.setattr(allocator, "_reusing", False)
    assert allocator.cpu_window_budget() == CPU_WINDOW_BUDGET
    monkeypatch.setattr(allocator, "_reusing", True)
    assert allocator.cpu_window_budget() == allocator.TUNED_CPU_WINDOW_BUDGET == 1 << 30
