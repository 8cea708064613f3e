"""Soak: a refresh load at half the measured capacity for ``--minutes``, RSS of each worker
sampled every ``--sample-seconds``; memory must stay flat.

``stetgate serve --workers 2`` on PostgreSQL (a database of its own on ``--pg-admin-url``'s
server, dropped afterwards). First the capacity of this set-up is measured (the refresh load of
`refresh_load` flat out for ``--capacity-seconds``: the load generator shares the box, so this
is the capacity of server and generator together), then the load runs at half of it. Prints the
RSS table (one row per sample, one column per worker), each worker's RSS slope after the
warm-up (the first third: pools, caches and the allocator's arenas fill), the per-minute
throughput and statuses, and the database checks of `refresh_load.check_pairs`. Exits 1 on a
non-200, a failed check, or a slope over ``--max-slope-kib`` per minute.

    .venv/bin/python scripts/faults/soak.py [--minutes 30] [--pairs 64] [--sample-seconds 10]

Not run in CI: docs/security.md#faults-and-fuzzing.
"""

from __future__ import annotations

import argparse
import sys
import time

from refresh_load import (
    audited_refreshes,
    check_pairs,
    create_pg_database,
    drop_pg_database,
    rss_of,
    run_refresh_load,
    running_bank,
)

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def slope_per_minute(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB) in KiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (r - mean_r) for t, r in points) / var * 60


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--capacity-seconds", type=float, default=10)
    parser.add_argument("--max-slope-kib", type=float, default=32)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = parser.parse_args()
    seconds = args.minutes * 60
    name, url = create_pg_database(args.pg_admin_url)
    samples: list[tuple[float, dict[int, int | None]]] = []
    try:
        with running_bank(url, args.pairs) as bank:
            measured = run_refresh_load(bank, args.capacity_seconds, processes=args.processes)
            capacity = measured.ok_rate(1, int(args.capacity_seconds))
            rate = capacity / 2
            print(
                f"capacity {capacity:.0f} refreshes/s; "
                f"soaking at {rate:.0f}/s for {args.minutes:g} min"
            )
            workers = sorted(bank.workers)
            audited_before = audited_refreshes(bank)

            def sample(start: float) -> None:
                time.sleep(max(0.0, start - time.time()))
                while time.time() < start + seconds:
                    samples.append((time.time() - start, rss_of(workers)))
                    time.sleep(args.sample_seconds)

            load = run_refresh_load(
                bank, seconds, processes=args.processes, rate=rate, during=sample
            )
            check = check_pairs(bank, load, audited_before=audited_before)
            alive = sorted(bank.workers) == workers
    finally:
        drop_pg_database(args.pg_admin_url, name)
    print(f"{'t (s)':>7} " + " ".join(f"{'worker ' + str(pid) + ' KiB':>20}" for pid in workers))
    for at, sizes in samples:
        print(f"{at:>7.0f} " + " ".join(f"{sizes[pid] or 0:>20}" for pid in workers))
    warm = seconds / 3
    slopes = {
        pid: slope_per_minute([(t, s[pid]) for t, s in samples if t >= warm and s[pid]])
        for pid in workers
    }
    for pid, slope in slopes.items():
        first = next(s[pid] for _, s in samples if s[pid])
        last = next(s[pid] for _, s in reversed(samples) if s[pid])
        print(
            f"worker {pid}: RSS {first} -> {last} KiB; slope after {warm / 60:.1f} min: "
            f"{slope:+.1f} KiB/min"
        )
    for minute in range(int(args.minutes + 0.999)):
        window = range(minute * 60, min(int(seconds), (minute + 1) * 60))
        counts = {st: sum(load.timeline[s][st] for s in window) for st in load.statuses()}
        rate_seen = counts.get("200", 0) / max(1, len(window))
        print(f"minute {minute + 1}: {rate_seen:.0f} refreshes/s, statuses {counts}")
    statuses = load.statuses()
    print(f"statuses: {dict(statuses)}; same workers throughout: {alive}")
    print("\n".join(check.lines()))
    flat = all(abs(slope) <= args.max_slope_kib for slope in slopes.values())
    ok = check.ok and alive and flat and set(statuses) == {"200"}
    print(
        f"soak: {'OK' if ok else 'FAILED'} (RSS flat: {flat}, limit {args.max_slope_kib:g} KiB/min)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
