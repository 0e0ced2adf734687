"""`wsgidaemon serve` against gunicorn's gthread worker, both over HTTP on loopback.

Same application, same processes x threads, wrk as the load generator. Rounds are
interleaved (A, B, A, B ...) and the report gives medians and the same-round ratio, because
the load generator shares the machine's cores with the servers: absolute figures move from
run to run, ratios measured side by side do not.

    .venv/bin/python benchmarks/serve_vs_gunicorn.py [--rounds 5] [--duration 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    script: str | None = None


WORKLOADS = (
    Workload("hello", "/"),
    Workload("get64k", "/64k"),
    Workload("post64k", "/echo", str(HERE / "post64k.lua")),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up")


def start(setup: str, port: int, processes: int, threads: int) -> subprocess.Popen[bytes]:
    if setup == "wsgidaemon":
        command = [
            str(VENV_BIN / "wsgidaemon"),
            "serve",
            str(HERE / "apps/bench_app.py"),
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ]
    else:
        command = [
            str(VENV_BIN / "gunicorn"),
            "--worker-class",
            "gthread",
            "--workers",
            str(processes),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE / "apps"),
            "--log-level",
            "warning",
            "bench_app:application",
        ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_serving(port)
    return proc


def cpu_seconds(session: int) -> float:
    """User and system CPU of every process in a server's session (master and workers)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session:  # the session id
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wrk(port: int, workload: Workload, connections: int, duration: float) -> dict[str, float]:
    command = [
        "wrk",
        "-t",
        "2" if connections > 1 else "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--latency",
    ]
    if workload.script:
        command += ["-s", workload.script]
    command.append(f"http://127.0.0.1:{port}{workload.path}")
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)

    def latency(pct: str) -> float:
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 0.0 if not socket_errors else 1.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    if not (VENV_BIN / "gunicorn").exists():
        print(f"gunicorn is needed: {VENV_BIN / 'pip'} install gunicorn", file=sys.stderr)
        return 2
    setups = ("wsgidaemon", "gunicorn")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    ports = {setup: free_port() for setup in setups}
    procs = {setup: start(setup, ports[setup], args.processes, args.threads) for setup in setups}
    try:
        for workload in WORKLOADS:
            for setup in setups:  # warm-up
                wrk(ports[setup], workload, args.connections, 1)
            for _ in range(args.rounds):
                for setup in setups:
                    before = cpu_seconds(procs[setup].pid)
                    run = wrk(ports[setup], workload, args.connections, args.duration)
                    used = cpu_seconds(procs[setup].pid) - before
                    run["cpu_us"] = used / (run["rps"] * round(args.duration)) * 1e6
                    results.setdefault((setup, workload.name), []).append(run)
    finally:
        for proc in procs.values():
            stop(proc)
    print(
        f"\n{args.processes} processes x {args.threads} threads, {args.connections} connections,"
        f" {args.rounds} rounds of {args.duration:g}s, medians\n"
    )
    print(
        "| workload | setup | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | ratio to gunicorn |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    per_round = []
    for workload in WORKLOADS:
        ratios = [
            a["rps"] / b["rps"]
            for a, b in zip(
                results[("wsgidaemon", workload.name)],
                results[("gunicorn", workload.name)],
                strict=True,
            )
        ]
        for setup in setups:
            runs = results[(setup, workload.name)]
            ratio = statistics.median(ratios) if setup == "wsgidaemon" else 1.0
            print(
                f"| {workload.name} | {setup} | {statistics.median(r['rps'] for r in runs):,.0f} "
                f"| {statistics.median(r['p50_ms'] for r in runs):.2f} "
                f"| {statistics.median(r['p99_ms'] for r in runs):.2f} "
                f"| {sum(r['errors'] for r in runs):.0f} "
                f"| {statistics.median(r['cpu_us'] for r in runs):.0f} | {ratio:.2f}x |"
            )
        per_round.append(f"{workload.name}: " + " ".join(f"{r:.2f}" for r in ratios))
    print("\nratios to gunicorn per round (same-round pairs):\n" + "\n".join(per_round))
    return 0


if __name__ == "__main__":
    sys.exit(main())
