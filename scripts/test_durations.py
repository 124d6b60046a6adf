"""Seconds per test file from a full run's `--durations=0` report, into tests/durations.json (the order in which
tests/conftest.py hands files to `make test`'s workers: the longest first).

    make test PYTEST_ARGS="-n 2 --dist loadfile --no-loadscope-reorder --durations=0" > /tmp/test.log 2>&1
    .venv/bin/python scripts/test_durations.py /tmp/test.log
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(\d+(?:\.\d+)?)s (?:setup|call|teardown)\s+(\S+?\.py)::")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path, help="the output of a full run with --durations=0")
    parser.add_argument("--min", type=float, default=5.0, help="leave out files shorter than this (seconds)")
    args = parser.parse_args()
    seconds: dict[str, float] = defaultdict(float)
    for line in args.log.read_text().splitlines():
        match = LINE.match(line)
        if match:
            seconds[match.group(2)] += float(match.group(1))
    if not seconds:
        raise SystemExit(f"{args.log}: no --durations=0 lines")
    kept = {path: round(s, 1) for path, s in sorted(seconds.items(), key=lambda kv: -kv[1]) if s >= args.min}
    (ROOT / "tests" / "durations.json").write_text(json.dumps(kept, indent=1) + "\n")
    print(f"{len(kept)} files of {len(seconds)} (>= {args.min} s), {sum(seconds.values()):.0f} s in all")


if __name__ == "__main__":
    main()
