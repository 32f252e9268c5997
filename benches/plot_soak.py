#!/usr/bin/env python3
"""Plot a soak run (the JSON that `cargo bench --bench soak` writes) as a PNG.

Three stacked panels over time: the node's resident memory (MiB), its open files
(entries of /proc/<pid>/fd), and chat latency (p99 solid, p50 dashed, in ms), each
over one sample interval.

Run it with matplotlib from a virtualenv:

    python3 -m venv /work/soak-venv
    /work/soak-venv/bin/pip install matplotlib
    /work/soak-venv/bin/python benches/plot_soak.py docs/soak.json docs/soak.png
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
