"""Helpers the benchmarks share: subprocesses, CPU accounting, the machine, RESULTS.md.

Linux only (it reads /proc), like the machines the project runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

PYTHON = sys.executable
RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Figures measured with the scripts in `bench/` (see `bench/README.md`). Each section is\n"
    "written by its script; re-running a script replaces only its own section.\n"
)


def free_port() -> int:
    """A free TCP port on loopback (there is a small race until the server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any inherited HAETAE_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAETAE_")}
    env.update(extra)
    return env


@dataclass
class Child:
    """A subprocess in its own process group, with its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully on it), then SIGKILL, to the whole process
        group. Not SIGINT: a child started from a non-interactive shell's background job
        inherits SIGINT ignored."""
        try:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not self.alive():
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    continue
            # The group may hold stragglers even after its leader has exited.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            self._log.close()


def start_child(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], log_dir: Path, cwd: Path
) -> Child:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killpg reaches its children too
    )
    return Child(name, proc, log_path, log)


def wait_for_port(port: int, child: Child, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on {port} in {timeout}s:\n{child.log_tail()}")


def wait_for_http(url: str, child: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=1.0) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy in {timeout}s:\n{child.log_tail()}")


# --- CPU accounting ----------------------------------------------------------------------


def _psutil() -> Any | None:
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    psutil = _psutil()
    if psutil is not None:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its living descendants (uvicorn's workers under their
    supervisor): ``/proc/<pid>/task/<tid>/children``."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    total += tree_cpu_seconds(int(child))
    return total


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU time of one thread of a process (the main thread: tid = pid)."""
    return _stat_cpu(Path(f"/proc/{pid}/task/{tid}/stat"))


def _stat_cpu(path: Path) -> float:
    stat = path.read_text()
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc_pid_stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def cpu_source() -> str:
    return "psutil" if _psutil() is not None else "/proc/<pid>/stat utime+stime"


# --- statistics ----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


# --- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            cpu_model = match.group(1).strip()
    memory = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            memory = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB"
    versions = []
    for package in ("fastapi", "starlette", "uvicorn", "uvloop", "sqlalchemy", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return {
        "cpus": f"{os.cpu_count()} (nproc {len(os.sched_getaffinity(0))})",
        "cpu_model": cpu_model,
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()} "
        f"({interpreter_build()})",
        "packages": ", ".join(versions),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def interpreter_build() -> str:
    """The interpreter binary behind the venv: builds differ in speed (the same code ran
    1.15× faster per payment on Debian's python3.11 than on pyenv's default build here,
    bench/RESULTS.md), and the version alone does not tell them apart."""
    return os.path.realpath(PYTHON)


def command_line() -> str:
    """The command as it was typed, with the interpreter relative to the working directory."""
    exe = PYTHON
    with contextlib.suppress(ValueError):
        relative = os.path.relpath(exe)
        if not relative.startswith(".."):
            exe = relative
    return shlex.join([exe, *sys.argv])


# --- RESULTS.md ----------------------------------------------------------------------------


def replace_section(path: Path, heading: str, body: str) -> None:
    """Write ``heading`` + ``body`` into ``path``, replacing that level-2 section if present
    and keeping every other section as it was."""
    text = path.read_text() if path.exists() else RESULTS_HEADER
    section = f"{heading}\n\n{body.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        text = text.rstrip() + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        after = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + after if after else "")
    path.write_text(text)


# --- the machine's other work ----------------------------------------------------------------


def busy_seconds(cpu: int | None = None) -> float:
    """CPU time used since boot, all processes, from ``/proc/stat``: the whole machine, or
    one core (``cpu``). Less a benchmark's own CPU, it is what others took meanwhile (the
    same reckoning as bench/notify.py, per core too)."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == label:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    raise ValueError(f"no {label} line in /proc/stat")


def quietest_cpu(cpus: Sequence[int], sample: float = 1.0) -> tuple[int, float]:
    """Of ``cpus``, the one other processes used least over ``sample`` seconds, and how busy
    it was (% of that core): where to pin a one-core measurement on a shared machine."""
    before = {cpu: busy_seconds(cpu) for cpu in cpus}
    time.sleep(sample)
    busy = {cpu: (busy_seconds(cpu) - before[cpu]) / sample * 100 for cpu in cpus}
    best = min(busy, key=lambda cpu: busy[cpu])
    return best, busy[best]


def wait_until_quiet(limit: float, below: float = 25.0, sample: float = 3.0) -> None:
    """Wait (at most ``limit`` seconds) for other processes to use under ``below``% of a
    core over ``sample`` seconds, as bench/notify.py does before each run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = busy_seconds()
        own = self_cpu_seconds()
        time.sleep(sample)
        busy = (busy_seconds() - before - (self_cpu_seconds() - own)) / sample * 100
        if busy < below:
            return
        print(f"  waiting for a quiet machine: others use {busy:.0f}% of a core", flush=True)


def package_versions(packages: Sequence[str]) -> str:
    found = []
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{package} {metadata.version(package)}")
    return ", ".join(found)


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` on uvloop when installed, as the server and the workers run (a load
    generator on uvloop also leaves more of the two cores to what it measures)."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


# --- py-spy ----------------------------------------------------------------------------------


def py_spy_argv() -> list[str]:
    """py-spy beside this interpreter (``.venv/bin/py-spy``), else on PATH; [] if neither."""
    beside = Path(PYTHON).with_name("py-spy")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("py-spy")
    return [found] if found else []


@dataclass
class PySpy:
    """``py-spy record --nonblocking --format raw`` on a process (this one, or a server),
    written when it is interrupted; optionally kept off the cores a measurement is pinned to
    (``cpus``), since a child inherits its parent's affinity."""

    proc: subprocess.Popen[bytes]
    output: Path

    @classmethod
    def start(
        cls, pid: int, output: Path, *, rate: int = 250, cpus: set[int] | None = None
    ) -> PySpy | None:
        argv = py_spy_argv()
        if not argv:
            return None
        proc = subprocess.Popen(
            [
                *argv,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--nonblocking",  # do not stop the process to sample it
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, cpus)
        return cls(proc, output)

    def stop(self) -> tuple[str, str]:
        """Its raw samples ("frame;frame;... count" lines) and, if none, why."""
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.output.exists():
            return self.output.read_text(), ""
        return "", err.decode(errors="replace")[-300:]


def profile_shares(
    raw: str, areas: Sequence[tuple[str, str]], steps: Sequence[tuple[str, str]] = ()
) -> tuple[int, dict[str, float], dict[str, float]]:
    """Summarise py-spy raw samples: how many; the share of each area (a sample goes to its
    innermost frame containing one of the areas' needles, ``(needle, area)``, first match
    wins; plain stdlib frames go to their caller, the rest to "other"); and the cumulative
    share of each step (``(label, function)``: samples with that function on the stack;
    ``(label, "path/")``: samples with a frame from that path)."""
    by_area: dict[str, int] = {}
    by_step: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        area = next(
            (name for frame in reversed(frames) for needle, name in areas if needle in frame),
            "other",
        )
        by_area[area] = by_area.get(area, 0) + count
        for label, needle in steps:
            # A path ("sqlalchemy/") matches any frame in it; else a function's name.
            if "/" in needle:
                hit = any(needle in frame for frame in frames)
            else:
                hit = any(frame.startswith(needle + " ") for frame in frames)
            if hit:
                by_step[label] = by_step.get(label, 0) + count
    share = 100 / total if total else 0.0
    ordered = sorted(by_area.items(), key=lambda kv: -kv[1])
    return (
        total,
        {name: n * share for name, n in ordered},
        {label: by_step.get(label, 0) * share for label, _ in steps},
    )


# --- RESULTS.md parts ------------------------------------------------------------------------


def replace_parts(
    path: Path, heading: str, intro: str, parts: Mapping[str, str], order: Sequence[str]
) -> None:
    """Replace (or add) ``###`` parts of the level-2 section ``heading`` (title → body),
    keeping the parts not given as they were: a script with several measurements re-runs
    one without losing the others' figures. Parts come in ``order``, unknown ones after."""
    existing: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is not None:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        title = None
        for line in lines[start + 1 : end]:
            if line.startswith("### "):
                title = line[4:].strip()
                existing[title] = ""
            elif title is not None:
                existing[title] += line + "\n"
    existing.update(parts)
    titles = [t for t in order if t in existing] + [t for t in existing if t not in order]
    body = intro + "\n\n" + "\n\n".join(f"### {t}\n\n{existing[t].strip()}" for t in titles)
    replace_section(path, heading, body)
