"""``docs/performance.md`` and its charts from `run_all` results (matplotlib, Agg backend)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from scenarios import SCENARIOS

ISSUE_TARGETS = {
    "refresh": "≥ 10,000/s SQLite, ≥ 6,000/s PostgreSQL, ≥ 70 % of local with 1 ms RTT; "
    "p99 < 50 ms at 64, < 150 ms at 256",
    "accounts": "≥ 3,000/s; ≥ 70 % of local with 1 ms RTT",
    "new_connection": "≥ 400/s",
    "new_connection_resumed": "≥ 400/s",
    "cinematic": "≥ 50/s with delegated login (not available yet: local argon2id reported)",
}
DATABASE_ORDER = ("sqlite", "postgresql", "postgresql-proxy")
COLOURS = {"sqlite": "tab:blue", "postgresql": "tab:orange", "postgresql-proxy": "tab:red"}


def _label(result: dict[str, Any]) -> str:
    return str(result["database_label"])


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _rss(result: dict[str, Any]) -> str:
    workers = [info for info in result["rss_kib"].values() if info["role"] == "worker"]
    return ", ".join(
        f"{w['first'] / 1024:.0f}→{w['last'] / 1024:.0f} ({w['max'] / 1024:.0f})" for w in workers
    )


def results_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | database | workers | conn. | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| non-2xx | CPU µs/op server | load gen. | PostgreSQL | proxy | other procs (cores) "
        "| RSS/worker MiB first→last (max) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        latency = r["latency_ms"] or {}
        cpu = r["cpu_us_per_op"] or defaultdict(float)
        lines.append(
            f"| {r['scenario']} | {_label(r)} | {r['workers']} | {r['connections']} "
            f"| {_rate(r['throughput'])} | {_ms(latency.get('p50'))} | {_ms(latency.get('p90'))} "
            f"| {_ms(latency.get('p99'))} | {_ms(latency.get('p999'))} | {r['non_2xx']} "
            f"| {cpu['server']:,.0f} | {cpu['load_generator']:,.0f} | {cpu['postgres_ours']:,.0f} "
            f"| {cpu['proxy']:,.0f} | {r['cores_busy']['others']:.2f} | {_rss(r)} |"
        )
    return lines


def _find(
    results: list[dict[str, Any]], scenario: str, kind: str, workers: int, connections: int
) -> dict[str, Any] | None:
    for r in results:
        if (r["scenario"], r["database"], r["workers"], r["connections"]) == (
            scenario,
            kind,
            workers,
            connections,
        ):
            return r
    return None


def remote_table(results: list[dict[str, Any]], workers: int, connections: int) -> list[str]:
    lines = [
        "| scenario | PostgreSQL ops/s | + RTT ops/s | ratio | p99 ms local → remote |",
        "|---|---:|---:|---:|---|",
    ]
    for name in SCENARIOS:
        local = _find(results, name, "postgresql", workers, connections)
        remote = _find(results, name, "postgresql-proxy", workers, connections)
        if not local or not remote or not local["throughput"]:
            continue
        lines.append(
            f"| {name} | {_rate(local['throughput'])} | {_rate(remote['throughput'])} "
            f"| {remote['throughput'] / local['throughput']:.0%} "
            f"| {_ms(local['latency_ms'].get('p99'))} → {_ms(remote['latency_ms'].get('p99'))} |"
        )
    return lines


def proxy_cost_lines(cost: dict[str, Any] | None, results: list[dict[str, Any]]) -> list[str]:
    if not cost:
        return ["Not measured in this run (no `postgresql-proxy` database, or `--no-proxy-cost`)."]
    trips = cost["round_trips"]
    base = trips["direct"]["median_ms"]
    lines = [
        f"`SELECT 1` round trips, sequential ({trips['pings']} each; "
        "`benchmarks/latency_proxy.py --measure`):",
        "",
        "| path | median ms | p99 ms | added to the median | proxy CPU µs/round trip |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in trips.items():
        if isinstance(row, dict) and "median_ms" in row:
            cpu = row["proxy_cpu_us_per_round_trip"]
            lines.append(
                f"| {name} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} "
                f"| {row['median_ms'] - base:+.3f} | {'–' if cpu is None else f'{cpu:.0f}'} |"
            )
    rates = trips["select1_per_s_16_clients"]
    lines += [
        "",
        f"`SELECT 1`/s over 16 concurrent connections: direct {rates['direct']:,.0f}, through "
        f"the 0 ms proxy {rates['proxy 0 ms']:,.0f} "
        f"({rates['proxy 0 ms'] / rates['direct'] - 1:+.0%}; this client is Python threads, "
        "so the figure bounds the proxy from below).",
    ]
    zero = cost.get("scenarios") or []
    if zero:
        lines += [
            "",
            "The same scenario through the proxy with 0 ms delay, next to direct (same workers "
            "and connections):",
            "",
            "| scenario | direct ops/s | 0 ms proxy ops/s | difference | proxy CPU µs/op |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in zero:
            direct = _find(results, r["scenario"], "postgresql", r["workers"], r["connections"])
            if direct and direct["throughput"]:
                lines.append(
                    f"| {r['scenario']} | {_rate(direct['throughput'])} "
                    f"| {_rate(r['throughput'])} "
                    f"| {r['throughput'] / direct['throughput'] - 1:+.0%} "
                    f"| {r['cpu_us_per_op'].get('proxy', 0):.0f} |"
                )
    return lines


def charts(results: list[dict[str, Any]], folder: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = [name for name in SCENARIOS if any(r["scenario"] == name for r in results)]
    kinds = [kind for kind in DATABASE_ORDER if any(r["database"] == kind for r in results)]
    labels = {r["database"]: _label(r) for r in results}
    top = max(r["workers"] for r in results)
    least = min(r["connections"] for r in results)
    made = []

    def grid(title: str) -> tuple[Any, list[Any]]:
        columns = min(4, len(names))
        rows = (len(names) + columns - 1) // columns
        figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.3 * rows), squeeze=False)
        figure.suptitle(title)
        flat = list(axes.flat)
        for axis in flat[len(names) :]:
            axis.set_visible(False)
        return figure, flat

    def sweep(file: str, title: str, x_key: str, fixed_key: str, fixed: int) -> None:
        figure, axes = grid(title)
        for axis, name in zip(axes, names, strict=False):
            for kind in kinds:
                points = sorted(
                    (r[x_key], r["throughput"])
                    for r in results
                    if r["scenario"] == name and r["database"] == kind and r[fixed_key] == fixed
                )
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, ys, marker="o", color=COLOURS[kind], label=labels[kind])
            axis.set_title(name, fontsize=10)
            axis.set_xlabel(x_key)
            axis.set_ylabel("ops/s")
            axis.set_ylim(bottom=0)
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(folder / file, dpi=90)
        plt.close(figure)
        made.append((file, title))

    sweep(
        "throughput_vs_connections.png",
        f"Throughput vs connections ({top} workers)",
        "connections",
        "workers",
        top,
    )
    for connections in sorted({r["connections"] for r in results}):
        figure, axes = grid(f"Latency percentiles, {top} workers, {connections} connections")
        width = 0.8 / max(1, len(kinds))
        for axis, name in zip(axes, names, strict=False):
            for index, kind in enumerate(kinds):
                r = _find(results, name, kind, top, connections)
                if not r or not r["latency_ms"]:
                    continue
                values = [r["latency_ms"][p] for p in ("p50", "p90", "p99", "p999")]
                axis.bar(
                    [i + index * width for i in range(4)],
                    values,
                    width,
                    color=COLOURS[kind],
                    label=labels[kind],
                )
            axis.set_xticks([i + width * (len(kinds) - 1) / 2 for i in range(4)])
            axis.set_xticklabels(["p50", "p90", "p99", "p99.9"])
            axis.set_yscale("log")
            axis.set_ylabel("ms")
            axis.set_title(name, fontsize=10)
            axis.grid(alpha=0.3, axis="y")
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        file = f"latency_{connections}_connections.png"
        figure.savefig(folder / file, dpi=90)
        plt.close(figure)
        made.append((file, f"Latency percentiles at {connections} connections ({top} workers)"))
    if len({r["workers"] for r in results}) > 1:
        sweep(
            "throughput_vs_workers.png",
            f"Throughput vs workers ({least} connections)",
            "workers",
            "connections",
            least,
        )
    return made


def write_report(document: dict[str, Any], path: Path) -> None:
    results = document["results"]
    machine = document["machine"]
    folder = path.parent / path.stem
    made = charts(results, folder) if results else []
    versions = machine["versions"]
    others = [r["cores_busy"]["others"] for r in results]
    top = max((r["workers"] for r in results), default=2)
    least = min((r["connections"] for r in results), default=64)
    lines = [
        "# Performance",
        "",
        "Written by `benchmarks/run_all.py` — do not edit by hand; findings and their profiles "
        "are in [performance-notes.md](performance-notes.md). Every figure comes from a real "
        "`stetgate serve` process over mutual TLS, driven by the load generator of "
        "`benchmarks/harness.py` on the same box (see `benchmarks/scenarios.py` for what one "
        "operation is).",
        "",
        f"Command: `{document['command']}` — started {document['started']}, commit "
        f"{machine.get('commit', '?')}; {document['seconds']:g} s measured after "
        f"{document['warmup']:g} s warm-up per run, a fresh database and server each run.",
        "",
        *(
            f"Amended: `{a['command']}` at {a['at']} ({a['runs']} runs replaced)."
            for a in document.get("amendments", [])
        ),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| cores | {machine['cores']} |",
        f"| CPU | {machine['cpu_model']} |",
        f"| RAM | {machine['ram']} |",
        f"| kernel | {machine['kernel']} |",
        f"| Python | {machine['python']} ({machine['openssl']}) |",
        "| packages | "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + " |",
        f"| SQLite | {machine['sqlite']} |",
        f"| PostgreSQL | {machine.get('postgresql', '–')} (synchronous_commit "
        f"{machine.get('synchronous_commit', '–')}), same box |",
        "| load average at start | "
        + ", ".join(f"{v:.2f}" for v in machine["load_average_at_start"])
        + " |",
        "",
        "## Noise",
        "",
    ]
    if others:
        lines.append(
            f"The box was shared: processes other than this benchmark (other developers' test "
            f"suites) used {statistics.mean(others):.2f} cores on average during the measuring "
            f"windows (median {statistics.median(others):.2f}, max {max(others):.2f}) out of "
            f"{machine['cores']}, and the load generator itself runs on the same cores. Read "
            "throughput as a floor and compare the CPU µs per operation, which move much less "
            'with contention; the column "other procs" gives each run\'s share.'
        )
    lines += [
        "",
        "## Remote database",
        "",
        f"PostgreSQL behind `benchmarks/latency_proxy.py` adding {document['rtt_ms']:g} ms per "
        f"round trip ({top} workers, {least} connections):",
        "",
        *remote_table(results, top, least),
        "",
        "### What the proxy costs",
        "",
        *proxy_cost_lines(document.get("proxy_cost"), results),
        "",
        "## Results",
        "",
        "ops/s counts 2xx answers completed inside the window; latency percentiles are over "
        "those answers (a whole cinematic for `cinematic`, connection set-up included for "
        "`new_connection*`). CPU µs/op: server processes, load generator, our PostgreSQL "
        "backends, proxy. non-2xx counts the whole run, warm-up included.",
        "",
        *results_table(results),
        "",
    ]
    notes = [
        f"- {r['scenario']} / {_label(r)} / {r['workers']}w / {r['connections']}c: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r["extra"].items()) if k != "load_cpu")
        + (
            f"; connections per worker {r['connections_per_worker']}"
            if r["connections_per_worker"]
            else ""
        )
        + (
            f"; GC {r['gc']['collections']} collections {r['gc']['by_generation']}, "
            f"{r['gc']['total_ms']:.0f} ms, max {r['gc']['max_ms']:.1f} ms"
            if "gc" in r
            else ""
        )
        for r in results
    ]
    lines += ["Per-run notes (TLS handshakes resumed, codes seeded, argon2id cost, …):", "", *notes]
    lines += ["", "## Targets", "", "| scenario | target |", "|---|---|"]
    lines += [f"| {name} | {target} |" for name, target in ISSUE_TARGETS.items()]
    lines += ["", "## Charts", ""]
    for file, title in made:
        lines += [f"![{title}]({folder.name}/{file})", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
