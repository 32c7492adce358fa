"""Run every benchmark of the project: `python -m bench` (or `make bench`) from the repository root.

Each bench/<name>.py runs as its own process (a fresh interpreter: no shared warm caches) and writes
bench/results/<name>.json. This collects them into bench/results.json and bench/results.md (the table
for the README) with the machine they ran on, and prints a table of the ratios.

A benchmark's ratios are read from its JSON: a "ratios" object ({"name": value}) when there is one,
else every number whose key contains "ratio" or "speedup" (nested keys joined with "."). An optional
"targets" object ({"name": value}) is shown next to them. Files whose name starts with "_" are helpers,
not benchmarks.

  python -m bench                   every benchmark
  python -m bench --only rewards    one (repeat --only, or NAME,NAME)
  python -m bench --quick           smaller sizes: passes --quick to each benchmark and sets BENCH_QUICK=1
  python -m bench --list            the benchmarks found
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"conftest", "common", "utils"}


def discover(bench_dir: Path = HERE) -> dict[str, Path]:
    return {p.stem: p for p in sorted(bench_dir.glob("*.py"))
            if not p.stem.startswith("_") and p.stem not in NOT_BENCHMARKS}


def machine() -> dict:
    """What the numbers were measured on (no heavy imports)."""
    info: dict = {"platform": platform.platform(), "python": platform.python_version(),
                  "cpu_count": os.cpu_count()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 ** 2, 1)
                break
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=False)
            gpus = [g.strip() for g in out.stdout.splitlines() if g.strip()]
            if gpus:
                info["gpu"] = ", ".join(gpus)
        except (OSError, subprocess.SubprocessError):
            pass
    for pkg in ("torch", "transformers", "trl"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return info


def machine_line(m: dict) -> str:
    cpu = m.get("cpu", platform.machine())
    cores = m.get("cpus_usable", m.get("cpu_count"))
    parts = [f"{cpu}, {cores} cores"]
    if m.get("memory_gb"):
        parts.append(f"{m['memory_gb']} GB RAM")
    parts.append(f"GPU: {m['gpu']}" if m.get("gpu") else "no GPU")
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    parts.append(f"Python {m.get('python')}")
    return "; ".join(parts)


def ratios(result: dict) -> dict[str, float]:
    """The ratios a benchmark reports (see the module docstring)."""
    if isinstance(result.get("ratios"), dict):
        return {k: float(v) for k, v in result["ratios"].items() if isinstance(v, (int, float))
                and not isinstance(v, bool)}
    out: dict[str, float] = {}

    def walk(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and k not in ("machine", "targets"):
                walk(v, key + ".")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                low = str(k).lower()
                if "ratio" in low or "speedup" in low:
                    out[key] = float(v)

    walk(result)
    return out


def _run(cmd: list[str], env: dict, timeout: float | None, cwd: Path) -> tuple[int | None, str]:
    """Run a benchmark, passing its output through live; returns (returncode or None on timeout, stderr
    tail)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE)
    tail = b""
    start = time.monotonic()
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    while True:
        try:
            chunk = proc.stderr.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            tail = (tail + chunk)[-4000:]
        if proc.poll() is not None:
            rest = proc.stderr.read() or b""
            sys.stderr.buffer.write(rest)
            return proc.returncode, (tail + rest)[-4000:].decode("utf-8", "replace")
        if timeout is not None and time.monotonic() - start > timeout:
            proc.kill()
            proc.wait()
            return None, tail.decode("utf-8", "replace")
        time.sleep(0.05)


def run_one(name: str, path: Path, *, quick: bool, timeout: float | None, results_dir: Path) -> dict:
    root = results_dir.parent.parent  # the repository: benchmarks run from there
    out_file = results_dir / f"{name}.json"
    before = out_file.stat().st_mtime if out_file.is_file() else None
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env["PYTHONPATH"]) if p)
    if quick:
        env["BENCH_QUICK"] = "1"
    cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
    print(f"\n=== {name} {'(quick) ' if quick else ''}===", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    code, err = _run(cmd, env, timeout, root)
    if quick and code == 2 and "unrecognized arguments: --quick" in err:
        code, err = _run(cmd[:-1], env, timeout, root)  # a benchmark without --quick: BENCH_QUICK still set
    rec: dict = {"returncode": code, "seconds": round(time.monotonic() - t0, 1), "quick": quick,
                 "when": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    if code is None:
        rec["status"] = f"timeout after {timeout:g}s"
    elif code != 0:
        rec["status"] = f"failed (exit {code})"
        rec["error"] = err.strip().splitlines()[-1] if err.strip() else ""
    fresh = out_file.is_file() and (before is None or out_file.stat().st_mtime > before)
    if fresh:
        try:
            rec["results"] = json.loads(out_file.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            rec.setdefault("status", f"unreadable results ({exc})")
    elif code == 0:
        rec["status"] = f"no results written to {out_file.relative_to(root)}"
    rec.setdefault("status", "ok")
    return rec


def table_rows(benchmarks: dict, current: set[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(benchmark, ratio, value, note) rows; `current`: benchmarks of this run (others are marked with
    the date of their run)."""
    rows = []
    for name, rec in benchmarks.items():
        res = rec.get("results") if isinstance(rec.get("results"), dict) else {}
        rs = ratios(res)
        targets = res.get("targets") if isinstance(res.get("targets"), dict) else {}
        extra = []
        if rec.get("quick"):
            extra.append("quick")
        if current is not None and name not in current:
            extra.append(f"earlier run {str(rec.get('when', '?'))[:10]}")
        if rec.get("status") != "ok" or not rs:
            status = rec.get("status", "?") if rec.get("status") != "ok" else "no ratios"
            if rec.get("error"):
                status += f": {rec['error'][:60]}"
            rows.append((name, "-", "-", "; ".join([status] + extra)))
            continue
        for k, v in rs.items():
            t = targets.get(k)
            rows.append((name, k, f"{v:.2f}x", "; ".join(([f"target {t}"] if t is not None else []) + extra)))
    return rows


def markdown(doc: dict, current: set[str]) -> str:
    lines = [f"Measured {doc['when'][:10]} on {machine_line(doc['machine'])}.", "",
             "| benchmark | ratio | value | note |", "|---|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(doc["benchmarks"], current)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, bench_dir: Path = HERE) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Run the project's benchmarks.")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this benchmark (repeatable, or comma separated)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per benchmark")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    found = discover(bench_dir)
    if args.list:
        print("\n".join(found) or "(no benchmarks)")
        return 0
    only = [n.strip().removesuffix(".py") for o in args.only for n in o.split(",") if n.strip()]
    unknown = [n for n in only if n not in found]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(found) or 'none'})",
              file=sys.stderr)
        return 2
    selected = {n: p for n, p in found.items() if not only or n in only}
    if not selected:
        print("no benchmarks found in bench/", file=sys.stderr)
        return 0
    results_dir = bench_dir / "results"
    results_dir.mkdir(exist_ok=True)
    summary_path = bench_dir / "results.json"
    previous = {}
    if summary_path.is_file():
        try:
            previous = json.loads(summary_path.read_text("utf-8")).get("benchmarks", {})
        except (OSError, json.JSONDecodeError, AttributeError):
            previous = {}
    m = machine()
    doc = {"when": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": m,
           "quick": args.quick, "benchmarks": {}}
    for name, path in selected.items():
        rec = run_one(name, path, quick=args.quick, timeout=args.timeout, results_dir=results_dir)
        rec["machine"] = m
        doc["benchmarks"][name] = rec
    # keep the last results of benchmarks not run this time (each carries its own machine and date)
    merged = {n: (doc["benchmarks"].get(n) or previous[n])
              for n in found if n in doc["benchmarks"] or n in previous}
    out = {**doc, "benchmarks": merged}
    tmp = summary_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, summary_path)
    (bench_dir / "results.md").write_text(markdown(out, set(doc["benchmarks"])), encoding="utf-8")

    rows = table_rows(doc["benchmarks"])
    widths = [max(len(r[i]) for r in rows + [("benchmark", "ratio", "value", "note")]) for i in range(4)]
    print(f"\nBenchmarks on {machine_line(m)}" + (" (quick sizes)" if args.quick else ""))
    for r in [("benchmark", "ratio", "value", "note"), tuple("-" * w for w in widths)] + rows:
        cells = (c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        print("  ".join(cells).rstrip())
    print(f"\nwritten: {summary_path}, {bench_dir / 'results.md'}")
    failed = [n for n, r in doc["benchmarks"].items() if r["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
