package dispatch

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// eventGridSchedule is the documented schedule: the wait after attempt 1…9,
// then every 12 hours.
var eventGridSchedule = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour,
}

// withinJitter reports whether d is base ±RetryJitter (scaled).
func withinJitter(d, base time.Duration, scale float64) bool {
	lo := time.Duration(float64(base) * (1 - RetryJitter) * scale)
	hi := time.Duration(float64(base) * (1 + RetryJitter) * scale)
	return d >= lo && d <= hi
}

func TestRetryScheduleBackOffWalksTheSchedule(t *testing.T) {
	for _, scale := range []float64{0, 1, 0.01} {
		b := RetrySchedule{Scale: scale, Rand: rand.New(rand.NewPCG(1, 2))}.BackOff()
		var _ backoff.BackOff = b
		eff := scale
		if eff == 0 {
			eff = 1
		}
		for i, base := range eventGridSchedule {
			if d := b.NextBackOff(); !withinJitter(d, base, eff) {
				t.Errorf("scale %v: delay %d is %v, want %v ±20%% scaled", scale, i+1, d, base)
			}
		}
		b.Reset()
		if d := b.NextBackOff(); !withinJitter(d, 10*time.Second, eff) {
			t.Errorf("scale %v: after Reset the first delay is %v", scale, d)
		}
	}
}

func TestRetryScheduleJitter(t *testing.T) {
	s := RetrySchedule{Rand: rand.New(rand.NewPCG(7, 7))}
	var lo, hi time.Duration = time.Hour, 0
	seen := map[time.Duration]bool{}
	for range 2000 {
		d := s.Delay(1, Outcome{})
		if !withinJitter(d, 10*time.Second, 1) {
			t.Fatalf("delay %v outside 8s–12s", d)
		}
		lo, hi = min(lo, d), max(hi, d)
		seen[d] = true
	}
	// The jitter spans most of its range and is not a handful of values.
	if lo > 8200*time.Millisecond || hi < 11800*time.Millisecond || len(seen) < 1000 {
		t.Errorf("2000 delays span %v–%v with %d distinct values", lo, hi, len(seen))
	}

	// The same seed gives the same delays.
	a := RetrySchedule{Rand: rand.New(rand.NewPCG(3, 4))}
	b := RetrySchedule{Rand: rand.New(rand.NewPCG(3, 4))}
	for n := 1; n <= 12; n++ {
		if da, db := a.Delay(n, Outcome{}), b.Delay(n, Outcome{}); da != db {
			t.Fatalf("attempt %d: %v and %v from the same seed", n, da, db)
		}
	}

	// Without a Rand it still jitters, from the global source.
	if d := (RetrySchedule{}).Delay(3, Outcome{}); !withinJitter(d, time.Minute, 1) {
		t.Errorf("nil Rand: %v", d)
	}
}

func TestRetryScheduleDelayMinimums(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
		o        Outcome
		scale    float64
		wantMin  time.Duration // the delay is exactly this (a floor won)...
		wantBase time.Duration // ...or the schedule's, ±20% (when wantMin is 0)
	}{
		{"schedule", 2, Outcome{Status: 500}, 1, 0, 30 * time.Second},
		{"attempts below 1 count as 1", 0, Outcome{}, 1, 0, 10 * time.Second},
		{"404 waits 5 min", 1, Outcome{Status: 404}, 1, 5 * time.Minute, 0},
		{"408 waits 2 min", 2, Outcome{Status: 408}, 1, 2 * time.Minute, 0},
		{"503 waits 30 s", 1, Outcome{Status: 503}, 1, 30 * time.Second, 0},
		{"a floor below the schedule changes nothing", 6, Outcome{Status: 404}, 1, 0, 30 * time.Minute},
		{"Retry-After beyond the schedule", 1, Outcome{Status: 429, RetryAfter: 3 * time.Minute}, 1, 3 * time.Minute, 0},
		{"Retry-After beyond the 503 floor", 1, Outcome{Status: 503, RetryAfter: 45 * time.Second}, 1, 45 * time.Second, 0},
		{"503 floor beyond Retry-After", 1, Outcome{Status: 503, RetryAfter: 20 * time.Second}, 1, 30 * time.Second, 0},
		{"Retry-After shorter than the schedule", 5, Outcome{Status: 429, RetryAfter: time.Second}, 1, 0, 10 * time.Minute},
		{"floors are scaled", 1, Outcome{Status: 404}, 0.01, 3 * time.Second, 0},
		{"Retry-After is scaled", 1, Outcome{Status: 429, RetryAfter: 10 * time.Minute}, 0.01, 6 * time.Second, 0},
		{"schedule is scaled", 9, Outcome{}, 0.01, 0, 6 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := RetrySchedule{Scale: tc.scale, Rand: rand.New(rand.NewPCG(5, 6))}
			d := s.Delay(tc.attempts, tc.o)
			if tc.wantMin != 0 {
				if d != tc.wantMin {
					t.Errorf("delay %v, want %v", d, tc.wantMin)
				}
			} else if !withinJitter(d, tc.wantBase, tc.scale) {
				t.Errorf("delay %v, want %v ±20%% ×%v", d, tc.wantBase, tc.scale)
			}
		})
	}
}
