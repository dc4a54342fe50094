#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/pulse.json, the Pulse dashboard, from the rows below.

One row per stage in pipeline order (sources, stream, analysis, store, end to end, alerts,
virality, live connections, process), each panel a PromQL query over every instance, so one
dashboard shows a consumer group of N processes as one server. Kept as code so a panel is one
line to add and every query sits next to its title; the JSON is committed because Grafana
provisions files, not scripts.

    python3 deploy/grafana/dashboard.py          # rewrite the JSON
    python3 deploy/grafana/dashboard.py --check  # fail when the JSON is not what this writes
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards" / "pulse.json"
DS = {"type": "prometheus", "uid": "${datasource}"}


def q(expr: str, legend: str = "") -> dict:
    return {"expr": expr, "legendFormat": legend or "__auto", "refId": ""}


def pct(h: str, p: float, by: str = "") -> str:
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({p}, sum by ({group}) (rate({h}_bucket[$__rate_interval])))"


def ts(title: str, targets: list[dict], unit: str = "short", desc: str = "", stack: bool = False,
       width: int = 8) -> dict:
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 18 if stack else 8,
                    "showPoints": "never",
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "_w": width,
    }


def stat(title: str, expr: str, unit: str = "short", desc: str = "", thresholds=None) -> dict:
    steps = [{"color": "green", "value": None}] + [
        {"color": c, "value": v} for v, c in (thresholds or [])
    ]
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": [q(expr)],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
        "_w": 4,
        "_h": 4,
    }


RATE = "$__rate_interval"

ROWS: list[tuple[str, list[dict]]] = [
    ("Overview", [
        stat("Posts stored / s", f'sum(rate(pulse_store_rows_inserted_total{{table="posts"}}[{RATE}]))', "ops"),
        stat("Stream backlog", "max(pulse_consumer_lag_entries)", "short",
             "Entries in the stream not yet delivered to the consumer group.", [(1000, "orange"), (10000, "red")]),
        stat("p99 stream to store", pct("pulse_pipeline_latency_seconds", 0.99), "s",
             thresholds=[(5, "orange"), (30, "red")]),
        stat("Alerts, last hour", "sum(increase(pulse_alerts_fired_total[1h]))", "short"),
        stat("Dashboard sessions", "sum(pulse_ws_sessions)", "short"),
        stat("Dead letters, last hour", "sum(increase(pulse_dead_letters_total[1h]))", "short",
             thresholds=[(1, "orange")]),
    ]),
    ("Sources", [
        ts("Events read from platforms", [q(f"sum by (source, event) (rate(pulse_source_events_total[{RATE}]))", "{{source}} {{event}}")], "ops", stack=True),
        ts("Source errors", [q(f"sum by (source, reason) (rate(pulse_source_errors_total[{RATE}]))", "{{source}} {{reason}}")], "ops"),
        ts("Connected", [q("max by (source) (pulse_source_connected)", "{{source}}")], "bool",
           "1 while a connector is connected to its platform (or polling it without errors)."),
    ]),
    ("Stream and ingest", [
        ts("Entries read and acknowledged", [
            q(f"sum(rate(pulse_ingest_entries_read_total[{RATE}]))", "read"),
            q(f"sum(rate(pulse_ingest_entries_acked_total[{RATE}]))", "acknowledged"),
            q(f"sum(rate(pulse_ingest_entries_claimed_total[{RATE}]))", "claimed from stopped consumers"),
        ], "ops"),
        ts("Consumer group lag and pending", [
            q("max(pulse_consumer_lag_entries)", "lag (not yet delivered)"),
            q("max(pulse_consumer_pending_entries)", "pending (delivered, not acknowledged)"),
            q("sum(pulse_ingest_in_flight_entries)", "in flight in Pulse"),
        ], "short"),
        ts("Dead letters by reason", [q(f"sum by (reason) (increase(pulse_dead_letters_total[{RATE}]))", "{{reason}}")], "short",
           "Entries that could not be decoded, analysed or stored; read them with XRANGE <stream>:dead."),
        ts("Batch retries by stage", [q(f"sum by (stage) (rate(pulse_pipeline_batch_retries_total[{RATE}]))", "{{stage}}")], "ops"),
        ts("Read errors", [q(f"sum(rate(pulse_ingest_read_errors_total[{RATE}]))", "read errors")], "ops"),
        ts("Age of a batch when routed", [q(pct("pulse_ingest_entry_age_seconds", 0.5), "p50"), q(pct("pulse_ingest_entry_age_seconds", 0.99), "p99")], "s",
           "How old a batch's oldest entry is when the ingester routes it; over analyzer.fallback_lag_secs the lexicon takes it."),
    ]),
    ("Analysis", [
        ts("Posts analysed, model against lexicon fallback", [q(f"sum by (model) (rate(pulse_analyzer_posts_total[{RATE}]))", "{{model}}")], "ops",
           "Posts per analyzer; a lexicon share above zero means the model fell behind (or the language has no model).", stack=True),
        ts("Fallback", [
            q("max(pulse_analyzer_fallback_active)", "on fallback"),
            q(f"sum by (to) (increase(pulse_analyzer_switches_total[{RATE}]))", "switches to {{to}}"),
            q(f"sum(increase(pulse_analyzer_batches_handed_back_total[{RATE}]))", "batches handed back"),
        ], "short"),
        ts("Analyzer batch duration", [q(pct("pulse_analyzer_batch_duration_seconds", 0.5), "p50"), q(pct("pulse_analyzer_batch_duration_seconds", 0.99), "p99")], "s"),
        ts("Posts by language support", [q(f"sum by (support) (rate(pulse_analyzer_language_support_posts_total[{RATE}]))", "{{support}}")], "ops", stack=True),
    ]),
    ("Store", [
        ts("Rows written", [q(f"sum by (table) (rate(pulse_store_rows_inserted_total[{RATE}]))", "{{table}}")], "ops", stack=True),
        ts("Store batch duration", [q(pct("pulse_store_batch_duration_seconds", 0.5), "p50"), q(pct("pulse_store_batch_duration_seconds", 0.99), "p99")], "s"),
        ts("Store errors", [q(f"sum by (error_type) (rate(pulse_store_errors_total[{RATE}]))", "{{error_type}}")], "ops"),
    ]),
    ("End to end", [
        ts("Stream to store latency", [
            q(pct("pulse_pipeline_latency_seconds", 0.5), "p50"),
            q(pct("pulse_pipeline_latency_seconds", 0.9), "p90"),
            q(pct("pulse_pipeline_latency_seconds", 0.99), "p99"),
        ], "s", "From XADD to the commit in PostgreSQL, per entry.", width=24),
    ]),
    ("Alerts and notifications", [
        ts("Alerts fired", [q(f"sum by (kind) (increase(pulse_alerts_fired_total[{RATE}]))", "{{kind}}")], "short", stack=True, width=12),
        ts("Webhook deliveries", [q(f"sum by (outcome) (increase(pulse_webhook_deliveries_total[{RATE}]))", "{{outcome}}")], "short",
           "Delivery attempts: delivered, retry (will be tried again with backoff), dead (given up).", width=12),
    ]),
    ("Virality", [
        ts("Tracker leader", [q("sum(pulse_virality_leader)", "processes running the tracker")], "short",
           "Exactly one process of the group should run the tracker."),
        ts("Cascades and predictions", [
            q("sum(pulse_virality_cascades)", "cascades tracked"),
            q(f"sum(rate(pulse_virality_predictions_total[{RATE}]))", "predictions / s"),
        ], "short"),
        ts("Tracker tick duration", [q(pct("pulse_virality_tick_duration_seconds", 0.99), "p99")], "s"),
    ]),
    ("WebSockets and HTTP", [
        ts("WebSocket sessions", [q("sum(pulse_ws_sessions)", "open")], "short"),
        ts("WebSocket messages", [
            q(f"sum(rate(pulse_ws_messages_sent_total[{RATE}]))", "sent"),
            q(f"sum(rate(pulse_ws_messages_dropped_total[{RATE}]))", "dropped (slow clients)"),
            q(f"sum by (reason) (rate(pulse_ws_rejected_total[{RATE}]))", "rejected {{reason}}"),
        ], "ops"),
        ts("HTTP responses", [q(f"sum by (status) (rate(pulse_http_responses_total[{RATE}]))", "{{status}}")], "reqps", stack=True),
    ]),
    ("Process", [
        ts("Memory", [
            q("process_resident_memory_bytes", "resident {{instance}}"),
            q("pulse_process_memory_limit_bytes > 0", "limit {{instance}}"),
        ], "bytes", width=12),
        ts("Actor restarts", [q(f"sum by (actor) (increase(pulse_actor_restarts_total[{RATE}]))", "{{actor}}")], "short",
           "A supervisor restarted a crashed actor; its batch was retried.", width=12),
    ]),
]


def build() -> dict:
    panels, y, pid = [], 0, 1
    for title, row in ROWS:
        panels.append({"type": "row", "title": title, "id": pid, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        pid, y, x, line_h = pid + 1, y + 1, 0, 0
        for p in row:
            w, h = p.pop("_w"), p.pop("_h", 8)
            if x + w > 24:
                x, y, line_h = 0, y + line_h, 0
            p["id"] = pid
            p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            for i, t in enumerate(p["targets"]):
                t["refId"] = chr(ord("A") + i)
                t["datasource"] = DS
            panels.append(p)
            pid, x, line_h = pid + 1, x + w, max(line_h, h)
        y += line_h
    return {
        "uid": "pulse-overview",
        "title": "Pulse",
        "description": "Pulse, stage by stage in pipeline order: sources, stream, analysis, store, end to end, alerts, virality, live connections, process.",
        "tags": ["pulse"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"}, "hide": 0, "refresh": 1, "regex": "", "options": [],
        }]},
        "panels": panels,
    }


def main() -> int:
    text = json.dumps(build(), indent=2) + "\n"
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is not what {Path(__file__).name} writes: run it and commit the result", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
