"""Benchmark: the stock DatabaseScheduler against the fleet scheduler, in the same run.

    python bench/beat_bench.py                 # 1,000 and 10,000 schedules
    python bench/beat_bench.py --n 100000      # any sizes, repeat --n

For each size it seeds N interval schedules (every 15 minutes, last runs spread over the past
15 minutes, so about N/900 come due each second) in its own database, then for each scheduler:

- in a fresh process (so memory is its own): load time (construct + first tick), reload after
  one change (one row saved, then the work that takes it in: the stock scheduler's re-read and
  heap rebuild, the fleet scheduler's poll; median of 5), dispatch rate with all N due
  (ticks driven directly, real broker, 5 s or until all are sent), and idle CPU (% of a core over
  20 s, ticking as beat does, every row's next slot a period away);
- fleet only, in-process with a real clock: a burst (``min(N, 10,000)`` slots due on the same
  second with all N loaded: when the last is on the broker, lateness p50/p99, sends/s), then
  change-to-applied pickup p50/p99 per kind of change (save, delete, django-celery-beat's
  admin bulk action, timing-row edit; 20 each);
- as a real ``celery beat`` process for ``--window`` seconds, from ``--settle`` seconds after
  its first send (slots that came due while it loaded go first): one row edited each second (its
  last run moved back so it is due at once, saved as the admin saves it), the broker queue read
  as messages arrive: change-to-broker pickup p50/p99, lateness p50/p99 of the regular sends
  (arrival minus due time), and the beat process's RSS.

It prints a table with fleet/stock ratios and writes JSON (``--json``, default var/bench.json).
``--only burst`` runs just the fleet burst and the publish figures (minutes, not the whole run).
The database named by ``--database`` (default luffy_bench) is created if missing and emptied.

This file is the command and its report; the measurements are in ``beat_in_process.py`` (one
scheduler per child process) and ``beat_process.py`` (real processes), on ``beat_common.py``.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from beat_common import BURST, SCHEDULERS, rabbitmq_vhost, seed
from beat_in_process import measure_in_process
from beat_process import measure_beat, measure_publish
from bench_database import ROOT, bench_database_url, ensure_database, setup_django

# --- report -------------------------------------------------------------------------------

ROWS = [
    ("load_s", "load (s)", "{:.2f}"),
    ("reload_after_one_change_ms", "reload after one change (ms)", "{:.1f}"),
    ("reload_by_polling_ms", "same, fleet polling instead (ms)", "{:.1f}"),
    ("dispatch_per_s", "dispatches/s, all N loaded", "{:.0f}"),
    ("pickup_p50_s", "change-to-broker pickup p50 (s)", "{:.3f}"),
    ("pickup_p99_s", "change-to-broker pickup p99 (s)", "{:.3f}"),
    ("edits_picked_up", "edits picked up in the window", "{}"),
    ("lateness_p50_s", "lateness p50, 1 edit/s (s)", "{:.3f}"),
    ("lateness_p99_s", "lateness p99, 1 edit/s (s)", "{:.3f}"),
    ("due_sent_in_window", "slots due in the window, sent", "{}"),
    ("beat_rss_mb", "beat process RSS (MB)", "{:.0f}"),
    *(
        (f"pickup_{kind}_{q}_s", f"pickup {kind.replace('_', ' ')} {q} (s)", "{:.3f}")
        for kind in ("save", "delete", "admin_action", "timing_row")
        for q in ("p50", "p99")
    ),
    ("burst_slots", "burst: slots due on one second", "{:,}"),
    ("burst_last_on_broker_s", "burst: last on the broker after (s)", "{:.2f}"),
    ("burst_lateness_p99_s", "burst: lateness p99 (s)", "{:.2f}"),
    ("burst_per_s", "burst: sends/s", "{:.0f}"),
    ("burst_loaded_ahead_s", "burst: loaded ahead of the slot (s)", "{:.1f}"),
    ("rabbitmq_burst_last_on_broker_s", "burst on RabbitMQ: last on broker (s)", "{:.2f}"),
    ("rabbitmq_burst_lateness_p99_s", "burst on RabbitMQ: lateness p99 (s)", "{:.2f}"),
    ("rabbitmq_burst_per_s", "burst on RabbitMQ: sends/s", "{:.0f}"),
    ("memory_per_schedule_kb", "memory per schedule (KB)", "{:.2f}"),
    ("idle_cpu_pct", "idle CPU, nothing due (% of a core)", "{:.2f}"),
]


def fmt(template, value):
    return "-" if value is None else template.format(value)


def table(results: dict) -> str:
    lines = []
    for n, by_scheduler in results.items():
        lines.append(f"\n{n:,} schedules")
        lines.append(f"{'':34} {'stock':>12} {'fleet':>12} {'fleet/stock':>12}")
        for key, label, template in ROWS:
            stock, fleet = by_scheduler.get("stock", {}).get(key), by_scheduler["fleet"].get(key)
            if stock is None and fleet is None:
                continue  # not measured in this run (``--only``)
            ratio = "-"
            if isinstance(stock, (int, float)) and isinstance(fleet, (int, float)) and stock:
                ratio = f"{fleet / stock:.3g}"
            lines.append(f"{label:34} {fmt(template, stock):>12} {fmt(template, fleet):>12} {ratio:>12}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="schedules to seed (repeatable)")
    parser.add_argument("--window", type=float, default=30, help="seconds of real-time run per scheduler")
    parser.add_argument("--settle", type=float, default=5, help="seconds after the first send before measuring")
    parser.add_argument("--database", default="luffy_bench")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//", help="RabbitMQ for the publish figure")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench.json"))
    parser.add_argument(
        "--only",
        choices=["burst", "burst-amqp"],
        help="burst: only the fleet scheduler's burst (on Redis, and on RabbitMQ: --amqp) and the publish figures",
    )
    parser.add_argument("--measure", choices=SCHEDULERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = bench_database_url(args.database)

    if args.measure:  # child process: in-process measurements of one scheduler
        setup_django(database_url)
        print(json.dumps(measure_in_process(args.measure, args.only)))
        return

    ensure_database(database_url)
    setup_django(database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    tmp = Path(args.json).parent
    tmp.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in args.n or [1000, 10000]:
        results[n] = {}
        for key in ["fleet"] if args.only else SCHEDULERS:
            print(f"{n:,} schedules, {key}: in-process measurements", flush=True)
            seed(n)
            only = ["--only", args.only] if args.only else []
            child = subprocess.run(
                [sys.executable, __file__, "--measure", key, "--database", args.database, *only],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            results[n][key] = json.loads(child.stdout.strip().splitlines()[-1])
            if args.only:
                print(f"{n:,} schedules, {key}: the burst on RabbitMQ", flush=True)
                with rabbitmq_vhost(args.amqp) as url:
                    child = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--measure",
                            key,
                            "--database",
                            args.database,
                            "--only",
                            "burst-amqp",
                        ],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        check=True,
                        env=dict(os.environ, CELERY_BROKER_URL=url),
                    )
                results[n][key].update(json.loads(child.stdout.strip().splitlines()[-1]))
                continue
            print(f"{n:,} schedules, {key}: beat process, {args.window:.0f} s at one edit per second", flush=True)
            due = seed(n)
            results[n][key].update(measure_beat(key, due, args.window, args.settle, tmp))
    from django.conf import settings

    publishing = {}
    for broker_name, url in (("redis", settings.CELERY_BROKER_URL), ("rabbitmq", args.amqp)):
        print(f"publishing {BURST:,} sends at once: {broker_name}", flush=True)
        try:
            publishing[broker_name] = measure_publish(url)
        except Exception as exc:  # a broker that is not there leaves its figure out, not the run
            publishing[broker_name] = {"error": str(exc)}
    Path(args.json).write_text(json.dumps({**results, "publish": publishing}, indent=2))
    print(table(results))
    for broker_name, figures in publishing.items():
        print(f"publishing {BURST:,} at once, {broker_name}: {figures}")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
