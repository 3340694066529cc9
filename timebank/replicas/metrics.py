"""The replicas' counters and gauges, served at /metrics in the Prometheus text format.

prometheus_client keeps and renders them, in a registry of the app's own (not the library's
global one), so that each app instance, in a test as in a process, reports only itself; each
worker process reports its own (a scraper adds them up).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class ReplicaMetrics:
    """What an operator watches: which standbys are in use, how far behind, and where reads went."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.in_use = Gauge(
            "timebank_standby_in_use", "1 while the standby answers reads, else 0", ["standby"], registry=registry
        )
        self.lag_bytes = Gauge(
            "timebank_standby_lag_bytes", "WAL bytes the standby has yet to replay", ["standby"], registry=registry
        )
        self.lag_seconds = Gauge(
            "timebank_standby_lag_seconds",
            "Seconds since the standby last had everything replayed",
            ["standby"],
            registry=registry,
        )
        self.skipped = Counter(
            "timebank_standby_skipped",
            "Times a standby was taken out of use, by reason",
            ["standby", "reason"],
            registry=registry,
        )
        self.reads = Counter(
            "timebank_reads",
            "Lag-tolerant database reads (a request may make several) by where they were answered",
            ["target", "standby"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "timebank_read_fallbacks",
            "Lag-tolerant database reads answered by the primary instead of a standby, by reason",
            ["reason"],
            registry=registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def total(self, sample: str, **labels: str) -> float:
        """The sum of a sample's values over every label set that has `labels` (e.g. all standbys)."""
        return sum(
            s.value
            for metric in self.registry.collect()
            for s in metric.samples
            if s.name == sample and labels.items() <= s.labels.items()
        )
