"""Read a py-spy profile as text: where the server's main thread spends its time, by function and package.

    .venv/bin/py-spy record --pid PID --duration 10 --rate 100 --threads --format raw -o profile.txt
    .venv/bin/python bench/profile_summary.py profile.txt [--rate 100 --duration 10]

`bench/accept.py --profile DIR` records and summarizes each measured reachout run this way. py-spy's raw
format is one collapsed stack per line (`thread (tid): Name;frame;frame;... count`), frames being
`function (path/file.py:line)`. Without `--idle`, py-spy keeps only samples in which a thread was running,
so a thread's sample count over rate * duration is how busy it was.

SQLAlchemy's asyncio layer runs its synchronous core in greenlets: those samples have the greenlet's
stack only (rooted at `Session.execute`, `Connection.execute`, ...), not the coroutine that awaited it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD_ID = re.compile(r"\s*\(\d+\)")
_IDLE_LEAVES = ("asyncio/runners.py:Runner.run", "asyncio/base_events.py:BaseEventLoop._run_once")


def frame_name(frame: str) -> str:
    """`function (path/file.py:123)` -> `path/file.py:function`."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['file']}:{match['func']}"


def package_of(name: str) -> str:
    """The top-level package of a `path/file.py:function` name; stdlib modules are `stdlib`."""
    path = name.split(":", 1)[0]
    if "/" not in path or path.startswith(("<", "asyncio/", "email/", "json/", "concurrent/", "logging/")):
        return "stdlib"
    return path.split("/", 1)[0]


@dataclass
class Profile:
    threads: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)
    main: int = 0
    idle: int = 0
    greenlet: int = 0


def load(path: Path) -> Profile:
    profile = Profile()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("thread"):
            thread, frames = _THREAD_ID.sub("", frames[0]).removeprefix("thread:").strip(), frames[1:]
        else:
            thread = "MainThread"
        profile.threads[thread] += count
        if thread != "MainThread":
            continue
        names = [frame_name(f) for f in frames]
        profile.main += count
        if not names or names[-1] in _IDLE_LEAVES:
            profile.idle += count
            continue
        if not any(n.endswith(":Runner.run") for n in names):
            profile.greenlet += count
        profile.self_time[names[-1]] += count
        profile.packages[package_of(names[-1])] += count
        for name in set(names):
            profile.inclusive[name] += count
    return profile


def summarize(path: Path, *, rate: float | None = None, duration: float | None = None, top: int = 25) -> str:
    """A text report of a raw py-spy profile (percentages are of the main thread's busy samples)."""
    p = load(path)
    busy = p.main - p.idle
    if busy <= 0:
        return f"{path}: no busy main-thread samples"
    expected = rate * duration if rate and duration else None
    lines = [f"{path}: {p.main} main-thread samples, {busy} busy"]
    if expected:
        lines.append(f"main thread busy {100 * busy / expected:.0f}% of the {duration:g} s at {rate:g} Hz")
    lines.append(
        "active samples per thread: "
        + ", ".join(
            f"{t} {n}" + (f" ({100 * n / expected:.0f}%)" if expected else "")
            for t, n in p.threads.most_common(8)
        )
    )
    lines.append(f"in SQLAlchemy greenlets (sync core of AsyncSession): {100 * p.greenlet / busy:.1f}%")
    lines.append(
        "self time by package (leaf frame): "
        + ", ".join(f"{pkg} {100 * n / busy:.1f}%" for pkg, n in p.packages.most_common(12))
    )
    lines.append(f"{'self %':>7}  {'incl %':>7}  top {top} file:function by self time")
    for name, count in p.self_time.most_common(top):
        lines.append(f"{100 * count / busy:7.1f}  {100 * p.inclusive[name] / busy:7.1f}  {name}")
    lines.append(f"{'incl %':>7}  top {top} reachout/ functions by inclusive time")
    ours = Counter({n: c for n, c in p.inclusive.items() if n.startswith("reachout/")})
    for name, count in ours.most_common(top):
        lines.append(f"{100 * count / busy:7.1f}  {name}")
    lines.append(f"{'incl %':>7}  top {top} of everything by inclusive time")
    for name, count in p.inclusive.most_common(top):
        lines.append(f"{100 * count / busy:7.1f}  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--rate", type=float, default=None, help="py-spy --rate used (for busy %%)")
    parser.add_argument("--duration", type=float, default=None, help="py-spy --duration used (for busy %%)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile, rate=args.rate, duration=args.duration, top=args.top))


if __name__ == "__main__":
    main()
