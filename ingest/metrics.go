package ingest

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
)

// Metrics are Event Grid's publish metrics in Prometheus form:
//
//	sluice_publish_success_total{topic}          PublishSuccessCount (events)
//	sluice_publish_fail_total{topic,status}      PublishFailCount (requests)
//	sluice_publish_success_latency_ms{topic}     PublishSuccessLatencyInMs (histogram)
type Metrics struct {
	success *prometheus.CounterVec
	fail    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewMetrics registers the publish metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_publish_success_total", Help: "Events published and durably stored (Event Grid: PublishSuccessCount).",
		}, []string{"topic"}),
		fail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_publish_fail_total", Help: "Publish requests rejected or failed, by HTTP status (Event Grid: PublishFailCount).",
		}, []string{"topic", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_publish_success_latency_ms", Help: "Time from request to durable acknowledgement, in ms (Event Grid: PublishSuccessLatencyInMs).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500},
		}, []string{"topic"}),
	}
	reg.MustRegister(m.success, m.fail, m.latency)
	return m
}

func (m *Metrics) succeeded(topic string, events int, d time.Duration) {
	if m == nil {
		return
	}
	m.success.WithLabelValues(topic).Add(float64(events))
	m.latency.WithLabelValues(topic).Observe(float64(d) / float64(time.Millisecond))
}

func (m *Metrics) failed(topic string, err error) {
	if m == nil {
		return
	}
	status := 500
	var ae *apierr.Error
	if errors.As(err, &ae) {
		status = ae.Status
	}
	if status == 404 {
		topic = "" // unknown names must not grow the label set without bound
	}
	m.fail.WithLabelValues(topic, strconv.Itoa(status)).Inc()
}

// StoreCollector exports a store's request counts as
// sluice_store_requests_total{op,result}: what the object store bills.
type StoreCollector struct {
	store *objectlog.Store
	desc  *prometheus.Desc
}

// NewStoreCollector returns a collector over store's request counts.
func NewStoreCollector(store *objectlog.Store) *StoreCollector {
	return &StoreCollector{store: store, desc: prometheus.NewDesc("sluice_store_requests_total",
		"Object-store requests made by this process, by operation and result.", []string{"op", "result"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	for op, byRes := range c.store.Stats() {
		for res, n := range byRes {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), string(op), string(res))
		}
	}
}
