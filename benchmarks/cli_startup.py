"""How long `crowdkit --help` takes, against a bare Python start, in the same run.

Prints one JSON object: {"crowdkit_help_s", "python_bare_s", "ratio", "runs"}.
Medians over several runs; the goal is a ratio of 3 or less (start-up stays light because
heavy libraries are imported inside the commands that need them).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

RUNS = 9


def median_seconds(args: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    subprocess.run([sys.executable, "-m", "crowdkit", "--help"], check=True,
                   stdout=subprocess.DEVNULL)  # warm the file cache and bytecode
    bare = median_seconds([sys.executable, "-c", "pass"])
    crowdkit = median_seconds([sys.executable, "-m", "crowdkit", "--help"])
    print(json.dumps({"crowdkit_help_s": round(crowdkit, 4), "python_bare_s": round(bare, 4),
                      "ratio": round(crowdkit / bare, 2), "runs": RUNS}))


if __name__ == "__main__":
    main()
