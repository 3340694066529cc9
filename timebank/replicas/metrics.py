"""The replicas' counters and gauges, rendered in the Prometheus text format at /metrics.

A handful of labelled numbers kept in process memory: no client library is needed for so few, and
each process reports its own (a scraper adds them up).
"""

from __future__ import annotations

from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


class Metric:
    """One counter or gauge with its labelled values."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help_text = help_text
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.values.items()):
            shown = ",".join(f'{key}="{_escape(text)}"' for key, text in labels)
            lines.append(f"{self.name}{{{shown}}} {value:g}" if shown else f"{self.name} {value:g}")
        return lines


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ReplicaMetrics:
    """What an operator watches: which standbys are in use, how far behind, and where reads went."""

    def __init__(self) -> None:
        self.in_use = Metric("timebank_standby_in_use", "gauge", "1 while the standby answers reads, else 0")
        self.lag_bytes = Metric("timebank_standby_lag_bytes", "gauge", "WAL bytes the standby has yet to replay")
        self.lag_seconds = Metric(
            "timebank_standby_lag_seconds", "gauge", "Seconds since the standby last had everything replayed"
        )
        self.skipped = Metric(
            "timebank_standby_skipped_total", "counter", "Times a standby was taken out of use, by reason"
        )
        self.reads = Metric(
            "timebank_reads_total",
            "counter",
            "Lag-tolerant database reads (a request may make several) by where they were answered",
        )
        self.fallbacks = Metric(
            "timebank_read_fallbacks_total",
            "counter",
            "Lag-tolerant database reads answered by the primary instead of a standby, by reason",
        )

    def render(self) -> str:
        metrics = (self.in_use, self.lag_bytes, self.lag_seconds, self.skipped, self.reads, self.fallbacks)
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"
