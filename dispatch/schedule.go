package dispatch

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// retryDelays is Event Grid's retry schedule: the wait after attempt 1, 2,
// … 9. After that it retries every retryDelayAfterSchedule until the
// retry policy (max attempts, time to live) ends it.
var retryDelays = [...]time.Duration{
	10 * time.Second,
	30 * time.Second,
	time.Minute,
	5 * time.Minute,
	10 * time.Minute,
	30 * time.Minute,
	time.Hour,
	3 * time.Hour,
	6 * time.Hour,
}

const retryDelayAfterSchedule = 12 * time.Hour

// RetryJitter is the randomisation of every delay: ±20 %, so that events
// that failed together do not all come back together.
const RetryJitter = 0.2

// Event Grid's minimum waits after some answers, before scaling.
const (
	minDelayAfterNotFound    = 5 * time.Minute  // 404
	minDelayAfterTimeout     = 2 * time.Minute  // 408
	minDelayAfterUnavailable = 30 * time.Second // 503
)

// RetrySchedule computes when to try a failed delivery again. The zero
// value is Event Grid's schedule with randomness from math/rand/v2's
// global source.
type RetrySchedule struct {
	// Scale multiplies every delay, minimums and Retry-After included. It
	// is a testing and demo knob: 1 (or 0, read as 1) is Event Grid's
	// schedule; 0.01 walks the whole schedule in minutes.
	Scale float64
	// Rand is the source of the jitter; nil uses math/rand/v2's global
	// source. A *rand.Rand is not safe for concurrent use: share a
	// RetrySchedule that has one between goroutines only under a lock.
	Rand *rand.Rand
}

// Delay is how long to wait before the next attempt, after attempts
// attempts (≥ 1) of which the last ended with o: the schedule's delay for
// that many attempts, randomised by ±RetryJitter, and then at least
// Event Grid's minimum for o's status (5 min after 404, 2 min after 408,
// 30 s after 503) and at least o.RetryAfter — all multiplied by Scale.
func (s RetrySchedule) Delay(attempts int, o Outcome) time.Duration {
	d := s.jittered(attempts)
	var floor time.Duration
	switch o.Status {
	case http.StatusNotFound:
		floor = minDelayAfterNotFound
	case http.StatusRequestTimeout:
		floor = minDelayAfterTimeout
	case http.StatusServiceUnavailable:
		floor = minDelayAfterUnavailable
	}
	floor = max(floor, o.RetryAfter)
	return max(d, s.scaled(floor))
}

// BackOff returns the schedule as a backoff.BackOff: successive calls of
// NextBackOff give the (randomised, scaled) delays after attempt 1, 2, …;
// it never returns backoff.Stop, since the retry policy, not the
// schedule, ends retries.
func (s RetrySchedule) BackOff() *ScheduleBackOff { return &ScheduleBackOff{Schedule: s} }

// ScheduleBackOff walks a RetrySchedule. Not safe for concurrent use.
type ScheduleBackOff struct {
	Schedule RetrySchedule
	attempts int
}

var _ backoff.BackOff = (*ScheduleBackOff)(nil)

// NextBackOff returns the delay after the next attempt.
func (b *ScheduleBackOff) NextBackOff() time.Duration {
	b.attempts++
	return b.Schedule.jittered(b.attempts)
}

// Reset starts the schedule again from attempt 1.
func (b *ScheduleBackOff) Reset() { b.attempts = 0 }

// baseDelay is the schedule's delay after attempts attempts, unscaled and
// without jitter.
func baseDelay(attempts int) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	if attempts > len(retryDelays) {
		return retryDelayAfterSchedule
	}
	return retryDelays[attempts-1]
}

// jittered is baseDelay randomised by ±RetryJitter, then scaled.
func (s RetrySchedule) jittered(attempts int) time.Duration {
	var r float64
	if s.Rand != nil {
		r = s.Rand.Float64()
	} else {
		r = rand.Float64()
	}
	f := 1 + RetryJitter*(2*r-1)
	return s.scaled(time.Duration(float64(baseDelay(attempts)) * f))
}

func (s RetrySchedule) scaled(d time.Duration) time.Duration {
	if s.Scale <= 0 || s.Scale == 1 {
		return d
	}
	return time.Duration(float64(d) * s.Scale)
}
