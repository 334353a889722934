package objectlog_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sluicehq/sluice/objectlog"
)

// event1K is a 1 KiB CloudEvent in structured JSON.
func event1K(i int) objectlog.Record {
	head := fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"bench","type":"bench.event","time":"2026-11-25T00:00:00Z","data":"`, i)
	pad := bytes.Repeat([]byte("x"), 1024-len(head)-2)
	return objectlog.Record{Data: append(append([]byte(head), pad...), '"', '}'), Time: time.Now()}
}

// BenchmarkAppend measures group-committed appends of 1 KiB events by
// `conc` concurrent callers: throughput, per-append latency, and the object
// store requests per million events (what a cloud store bills).
func BenchmarkAppend(b *testing.B) {
	for _, be := range logBackends {
		for _, conc := range []int{1, 16, 64} {
			for _, mode := range []struct {
				name string
				cfg  objectlog.Config
			}{{"lowlatency", objectlog.LowLatency}, {"lowcost", lowCostForBench()}} {
				if mode.name == "lowcost" && conc != 64 {
					continue // the low-cost setting is about request counts under load
				}
				b.Run(fmt.Sprintf("%s/%s/conc=%d", be.name, mode.name, conc), func(b *testing.B) {
					benchAppend(b, be.url(b), mode.cfg, conc)
				})
			}
		}
	}
}

// lowCostForBench is LowCost with a flush interval a benchmark can afford;
// the request counts it reports scale with events per flush.
func lowCostForBench() objectlog.Config {
	c := objectlog.LowCost
	c.FlushInterval = 100 * time.Millisecond
	return c
}

func benchAppend(b *testing.B, url string, cfg objectlog.Config, conc int) {
	ctx := context.Background()
	s, err := objectlog.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, err := objectlog.NewLog(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]objectlog.Record, 256)
	for i := range recs {
		recs[i] = event1K(i)
	}
	// Warm up: resolve the tail so the measured window is steady state.
	if _, err := l.Append(ctx, "bench", 0, recs[:1]); err != nil {
		b.Fatal(err)
	}
	base := s.Stats()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := l.Append(ctx, "bench", 0, recs[i%256:i%256+1]); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reqs := s.Stats().Sub(base).Total()
	l.Close()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(float64(reqs)*1e6/float64(b.N), "req/1M-events")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCommitFloor is the floor of one commit on a store, measured in the
// same run as BenchmarkAppend: one 1 KiB segment PUT (create-if-absent)
// followed by one 1 KiB manifest PUT (create-if-absent), back to back.
func BenchmarkCommitFloor(b *testing.B) {
	for _, be := range logBackends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := objectlog.Open(ctx, be.url(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := event1K(0).Data
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := s.PutIfAbsent(ctx, "floor/seg/"+ulid.Make().String(), body); err != nil {
					b.Fatal(err)
				}
				if _, err := s.PutIfAbsent(ctx, fmt.Sprintf("floor/manifest/%020d", i), body); err != nil {
					b.Fatal(err)
				}
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		})
	}
}

// BenchmarkAppendSteady offers single-event appends at a fixed rate (open
// loop: an append starts every 1/rate seconds whether or not earlier ones
// finished), as producers do, so the latency and the requests per event are
// those of a steady load, not of a saturated writer. b.N is the number of
// events, so the run lasts b.N/rate seconds: use -benchtime 3000x.
func BenchmarkAppendSteady(b *testing.B) {
	const rate = 1000
	for _, be := range logBackends {
		for _, mode := range []struct {
			name string
			cfg  objectlog.Config
		}{{"lowlatency", objectlog.LowLatency}, {"lowcost", objectlog.LowCost}} {
			b.Run(fmt.Sprintf("%s/%s/rate=%d", be.name, mode.name, rate), func(b *testing.B) {
				benchSteady(b, be.url(b), mode.cfg, rate)
			})
		}
	}
}

func benchSteady(b *testing.B, url string, cfg objectlog.Config, rate int) {
	ctx := context.Background()
	s, err := objectlog.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, err := objectlog.NewLog(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.Append(ctx, "bench", 0, []objectlog.Record{event1K(0)}); err != nil {
		b.Fatal(err)
	}
	base := s.Stats()
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load generator, not waiting for a result
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if _, err := l.Append(ctx, "bench", 0, []objectlog.Record{event1K(i)}); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	b.StopTimer()
	l.Close() // the hint and checkpoint writes of the window are counted too
	reqs := s.Stats().Sub(base).Total()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(float64(reqs)*1e6/float64(b.N), "req/1M-events")
}
