#!/usr/bin/env python3
"""Plot a soak run (the JSON that `cargo bench --bench soak` writes) as a PNG.

Three stacked panels over time: the node's resident memory (MiB), its open files
(entries of /proc/<pid>/fd), and chat latency (p99 solid, p50 dashed, in ms), each
over one sample interval.

Run it with matplotlib from a virtualenv:

    python3 -m venv /work/soak-venv
    /work/soak-venv/bin/pip install matplotlib
    /work/soak-venv/bin/python benches/plot_soak.py docs/soak.json docs/soak.png

It also prints a Markdown table of the first, last and largest values, and what the
misbehaving clients met, for docs/benchmarks.md.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        print("usage: plot_soak.py SOAK.json OUT.png", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        run = json.load(f)
    samples = run["samples"]
    if not samples:
        print("no samples in", sys.argv[1], file=sys.stderr)
        return 1
    minutes = [s["elapsed_secs"] / 60 for s in samples]
    rss = [s["rss_bytes"] / 2**20 for s in samples]
    fds = [s["open_files"] for s in samples]
    p99 = [s["chat"]["latency_ms"]["p99"] for s in samples]
    p50 = [s["chat"]["latency_ms"]["p50"] for s in samples]

    settings, machine = run["settings"], run["machine"]
    fig, (ax_rss, ax_fds, ax_lat) = plt.subplots(3, 1, sharex=True, figsize=(10, 8.5))
    fig.suptitle(
        f"PeerLink soak, {settings['minutes']:g} min: {settings['chat_connections']} chat "
        f"connections in {settings['rooms']} rooms at {settings['chat_messages_per_sec']:g} msg/s, "
        f"a {settings['transfer_size_bytes'] / 2**20:g} MiB transfer and a "
        f"{settings['upload_size_bytes'] / 2**20:g} MiB upload a minute, "
        f"{settings['misbehaving_of_each_kind']} misbehaving clients of each kind\n"
        f"{machine.get('nproc')} × {machine.get('model_name')}, {machine.get('date')}",
        fontsize=9,
    )
    ax_rss.plot(minutes, rss, color="tab:blue")
    ax_rss.set_ylabel("node RSS (MiB)")
    ax_rss.set_ylim(bottom=0)
    ax_fds.plot(minutes, fds, color="tab:green")
    ax_fds.set_ylabel("node open files")
    ax_fds.set_ylim(bottom=0)
    ax_lat.plot(minutes, p99, color="tab:red", label="p99")
    ax_lat.plot(minutes, p50, color="tab:red", linestyle="--", label="p50")
    ax_lat.set_ylabel(f"chat latency (ms)\nper {settings['sample_secs']:g} s sample")
    ax_lat.set_ylim(bottom=0)
    ax_lat.legend(loc="upper right")
    ax_lat.set_xlabel("minutes since the workload started")
    for ax in (ax_rss, ax_fds, ax_lat):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print("wrote", sys.argv[2])
    print_summary(run)
    return 0


def print_summary(run: dict) -> None:
    samples = run["samples"]

    def row(name, values, fmt):
        values = [v for v in values if v is not None]
        first, last, top = values[0], values[-1], max(values)
        print(f"| {name} | {fmt(first)} | {fmt(last)} | {fmt(top)} |")

    print()
    print("| | first sample | last sample | max |")
    print("|---|---|---|---|")
    row("node RSS (MiB)", [s["rss_bytes"] / 2**20 for s in samples], lambda v: f"{v:.1f}")
    row("node open files", [s["open_files"] for s in samples], lambda v: f"{v}")
    row("node threads", [s.get("threads") for s in samples], lambda v: f"{v}")
    row("chat p50 (ms)", [s["chat"]["latency_ms"]["p50"] for s in samples], lambda v: f"{v:.2f}")
    row("chat p99 (ms)", [s["chat"]["latency_ms"]["p99"] for s in samples], lambda v: f"{v:.1f}")
    row("node CPU (% of one core)", [s["node_cpu_percent"] for s in samples], lambda v: f"{v:.1f}")
    row("machine CPU busy (% of all cores)",
        [s.get("machine_cpu_busy_percent") for s in samples], lambda v: f"{v:.0f}")
    p99s = sorted(s["chat"]["latency_ms"]["p99"] for s in samples)
    print(f"\nmedian of the per-sample p99: {p99s[len(p99s) // 2]:.1f} ms")
    last = samples[-1]
    print("transfers:", last["transfers"], " uploads:", last["uploads"])
    print("misbehaving:", json.dumps(last["misbehaving"]))
    print("node stats at the end:", json.dumps(last.get("node_stats")))
    print("unexpected errors:", run.get("unexpected_errors"),
          " digest mismatches:", run.get("digest_mismatches"),
          " node exit:", run.get("node_exit"), " chat:", json.dumps(run.get("chat_totals")))


if __name__ == "__main__":
    sys.exit(main())
