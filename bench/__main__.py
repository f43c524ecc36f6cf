"""`make bench`: run every benchmark (each a median of several runs) and write RESULTS.md."""

from __future__ import annotations

import subprocess
import sys

from bench.report import write_results

BENCHMARKS = [
    ["bench.market_fanout", "--subscribers", "1000", "--rate", "10", "--seconds", "10", "--runs", "3"],
    ["bench.mark_to_market", "--runs", "5"],
    ["bench.risk_metrics", "--runs", "5"],
    ["bench.upload", "--mib", "128", "--runs", "3"],
    ["bench.market_calibration", "--day", "2026-12-02", "--seed", "42", "--step", "1"],
    ["bench.market_memory", "--subscribers", "200", "--seconds", "120"],
    ["bench.recording", "--rate", "1000", "--seconds", "30", "--runs", "3"],
    ["bench.orders", "--concurrency", "1,8,32,64", "--seconds", "8", "--runs", "3"],
    ["bench.breach_latency", "--challenges", "200", "--runs", "3"],
    ["bench.challenges_scale", "--challenges", "200000", "--positions", "5", "--replicas", "3"],
]


def main() -> int:
    for args in BENCHMARKS:
        print(f"== {' '.join(args)}", flush=True)
        rc = subprocess.run([sys.executable, "-m", *args]).returncode
        if rc != 0:
            print(f"{args[0]} failed ({rc})", file=sys.stderr)
            return rc
    print(f"wrote {write_results()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
