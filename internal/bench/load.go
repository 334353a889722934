package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sendFunc makes one request carrying n events; it returns an error if the
// request failed or was refused.
type sendFunc func(ctx context.Context, seq int64) error

// loadResult is what a load phase measured.
type loadResult struct {
	Requests  int64
	Errors    int64
	FirstErr  error
	Elapsed   time.Duration
	Latencies []time.Duration // one per successful request
}

// closedLoop runs conns senders back to back until d has passed or max
// requests have been sent (0: no bound besides d), as wrk does.
func closedLoop(ctx context.Context, conns int, d time.Duration, max int64, send sendFunc) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		res    loadResult
		wg     sync.WaitGroup
		starts = time.Now()
	)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs int64
			var first error
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if max > 0 && seq >= max {
					break
				}
				t := time.Now()
				err := send(ctx, seq)
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the phase: not a failure
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Errors += errs
			if res.FirstErr == nil {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(starts)
	res.Requests = int64(len(res.Latencies)) + res.Errors
	return res
}

// openLoop sends rate requests per second, each at its scheduled time
// whatever the answers' latency (so a slow answer does not hide as a lower
// rate), with at most conns requests in flight, until d has passed.
// Requests that find every connection busy are counted as late (sent when
// one frees up).
func openLoop(ctx context.Context, rate float64, conns int, d time.Duration, send sendFunc) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	slots := make(chan struct{}, conns)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for seq := int64(0); ; seq++ {
		due := start.Add(time.Duration(seq) * interval)
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			t := time.Now()
			// The request outlives the phase's end: it was due within it.
			err := send(context.WithoutCancel(ctx), seq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Errors++
				if res.FirstErr == nil {
					res.FirstErr = err
				}
				return
			}
			res.Latencies = append(res.Latencies, time.Since(t))
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = int64(len(res.Latencies)) + res.Errors
	return res
}

// Latency is a distribution's summary in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return Latency{Count: int64(len(s)), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
