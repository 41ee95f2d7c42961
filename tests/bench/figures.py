"""The machine-readable output every tests/bench/bench_*.py script writes with ``--json PATH``.

One shape for all of them, read by tests/bench/aggregate.py (``make bench``) into one table:

    {"bench": "users_list", "database": "sqlite" | "postgresql",
     "size": {"users": 100000, ...},            # what the script was asked to build and run
     "load_average": 1.3,                       # of the machine when it finished
     "figures": [                               # one per line of the table, in table order
        {"key": "page_1_ms", "name": "list page 1", "value": 11.2, "unit": "ms",
         "budget": 25, "better": "lower",       # budget and direction: None when only a figure
         "floor": 4.1, "floor_name": "sqlite3", # the hand-written floor or peer of the same run
         "ok": true}],                          # value beats budget (None without a budget)
     "raw": {...}}                              # everything else the script measured

The human output (the script's own table and its JSON line) stays as it was; ``--json`` only
adds the file.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def add_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--json PATH`` to a bench script's arguments."""
    parser.add_argument("--json", dest="json_path", type=Path, default=None, metavar="PATH",
                        help="also write the figures as JSON (tests/bench/figures.py) to PATH")


def database_name(url: str | None) -> str:
    """Return "sqlite" or "postgresql" for a database URL (None: the script's own SQLite)."""
    if not url:
        return "sqlite"
    return "postgresql" if url.startswith("postgres") else url.split(":", 1)[0].split("+")[0]


def figure(key: str, name: str, value: float | None, unit: str, *, budget: float | None = None,
           better: str = "lower", floor: float | None = None,
           floor_name: str | None = None) -> dict[str, Any]:
    """Return one figure; ``ok`` says whether ``value`` beats ``budget`` (lower or higher)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be lower or higher, not {better!r}")
    ok = None
    if budget is not None and value is not None:
        ok = value < budget if better == "lower" else value >= budget
    return {"key": key, "name": name, "value": value, "unit": unit, "budget": budget,
            "better": better, "floor": floor, "floor_name": floor_name, "ok": ok}


def write(path: Path | None, bench: str, database: str, figures: list[dict], *,
          size: dict[str, Any], raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the document to ``path`` (when given) and return it."""
    document = {
        "bench": bench,
        "database": database,
        "size": size,
        "load_average": round(os.getloadavg()[0], 2),
        "figures": figures,
        "raw": raw or {},
    }
    if path is not None:
        path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    return document


def timed(func, repeat: int) -> tuple[float, float]:
    """Return the median wall and CPU milliseconds of ``repeat`` calls (after one warm-up).

    CPU time is this process's: on a busy machine (see the load average) it shows what the
    work costs when the wall clock also counts waiting for a core.
    """
    func()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        func()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def profiled(name: str, wanted: str | None, func, *, interval: float = 0.0002,
             html: Path | None = None):
    """Return ``func()``; when ``name`` is the one ``--profile`` asked for, under pyinstrument,
    its text report on stderr (and an HTML one in ``html`` when given)."""
    if wanted != name:
        return func()
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval)
    profiler.start()
    try:
        return func()
    finally:
        profiler.stop()
        if html is not None:
            html.parent.mkdir(exist_ok=True)
            html.write_text(profiler.output_html())
        print(profiler.output_text(unicode=True, color=False, show_all=False), file=sys.stderr)
