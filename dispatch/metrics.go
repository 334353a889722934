package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's Prometheus metrics. The per-subscription
// counters carry Event Grid's metric names (in the help text) so
// dashboards translate one to one.
type Metrics struct {
	Matched      *prometheus.CounterVec
	Unmatched    *prometheus.CounterVec
	Success      *prometheus.CounterVec
	AttemptFail  *prometheus.CounterVec
	DeadLettered *prometheus.CounterVec
	Dropped      *prometheus.CounterVec
	Duration     *prometheus.HistogramVec
	Units        prometheus.Gauge
	Takeovers    prometheus.Counter
	LeasesLost   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"topic", "subscription"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		Matched:      counter("sluice_matched_events_total", "Events that matched a subscription's filter (Event Grid: MatchedEventCount)."),
		Unmatched:    counter("sluice_unmatched_events_total", "Events that did not match a subscription's filter (Event Grid: UnmatchedEventCount)."),
		Success:      counter("sluice_delivery_success_total", "Events delivered (Event Grid: DeliverySuccessCount)."),
		AttemptFail:  counter("sluice_delivery_attempt_fail_total", "Events whose delivery attempt failed (Event Grid: DeliveryAttemptFailCount)."),
		DeadLettered: counter("sluice_dead_lettered_total", "Events dead-lettered (Event Grid: DeadLetteredCount)."),
		Dropped:      counter("sluice_dropped_events_total", "Undeliverable events dropped because dead-lettering is off (Event Grid: DroppedEventCount)."),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_destination_processing_duration_ms",
			Help:    "Time the destination took to answer a delivery, ms (Event Grid: DestinationProcessingDurationInMs).",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000},
		}, labels),
		Units:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_dispatch_units", Help: "Units of delivery work (subscription partitions) this worker holds."}),
		Takeovers:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_dispatch_takeovers_total", Help: "Units taken over from a worker whose heartbeat stopped."}),
		LeasesLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_dispatch_leases_lost_total", Help: "Units this worker lost to another (fenced)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Matched, m.Unmatched, m.Success, m.AttemptFail, m.DeadLettered, m.Dropped, m.Duration, m.Units, m.Takeovers, m.LeasesLost)
	}
	return m
}
