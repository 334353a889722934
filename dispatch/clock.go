package dispatch

import "time"

// Clock is the time the dispatcher lives by: lease expiry, retry due times,
// time-to-live and cursor checkpoints all read it, so tests drive them with
// a fake clock instead of sleeping. Now must carry a monotonic reading
// (time.Now does): durations between two Now calls are what lease expiry
// is judged by, never a comparison with another machine's clock.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the process's clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
