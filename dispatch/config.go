package dispatch

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config tunes a dispatcher. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// LeaseTTL is how long a worker's heartbeat must stay unchanged, as
	// seen on another worker's own clock, before that worker takes over
	// its units. Takeover after a crash takes at most LeaseTTL+MemberPoll.
	LeaseTTL time.Duration
	// MemberPoll is how often a worker lists the other workers (one LIST)
	// and rewrites its heartbeat (one PUT) while it is not alone. A lone
	// worker does both every LeaseTTL/2.
	MemberPoll time.Duration
	// CursorEvery bounds how often a unit's cursor is written while it
	// delivers (one conditional PUT). After a crash, deliveries made since
	// the last cursor write are repeated: this is the duplicate bound.
	CursorEvery time.Duration
	// Concurrency is how many delivery requests one unit (subscription,
	// partition) has in flight at once.
	Concurrency int
	// RetryScale multiplies every retry delay; 1 in production. Tests and
	// demos use a small value to see a whole retry schedule in seconds.
	RetryScale float64
	// DrainTimeout bounds how long a unit that is stopping waits for its
	// in-flight deliveries before it cancels them.
	DrainTimeout time.Duration
	// WorkerID names this worker in leases (default: a new ULID).
	WorkerID string
}

// The two documented ends of the cursor trade-off: LowLatency writes a
// cursor at most every second per busy unit, LowCost every ten seconds
// (fewer requests, more redelivered events after a crash).
var (
	LowLatency = Config{LeaseTTL: 10 * time.Second, MemberPoll: 2 * time.Second, CursorEvery: time.Second, Concurrency: 16, RetryScale: 1, DrainTimeout: 5 * time.Second}
	LowCost    = Config{LeaseTTL: 10 * time.Second, MemberPoll: 2 * time.Second, CursorEvery: 10 * time.Second, Concurrency: 16, RetryScale: 1, DrainTimeout: 5 * time.Second}
)

// DefaultConfig is LowLatency.
func DefaultConfig() Config { return LowLatency }

// RegisterFlags binds the config to flags, keeping current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "dispatch: a worker whose heartbeat is unchanged this long loses its work to others")
	fs.DurationVar(&c.MemberPoll, "member-poll", c.MemberPoll, "dispatch: how often workers look for each other (one LIST, one heartbeat PUT)")
	fs.DurationVar(&c.CursorEvery, "cursor-every", c.CursorEvery, "dispatch: how often a busy subscription partition records its progress; also what a crash may redeliver")
	fs.IntVar(&c.Concurrency, "delivery-concurrency", c.Concurrency, "dispatch: requests in flight per subscription partition")
	fs.Float64Var(&c.RetryScale, "retry-scale", c.RetryScale, "dispatch: multiply every retry delay (testing and demos; 1 is Event Grid's schedule)")
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("lease TTL %v: must be at least 1s", c.LeaseTTL))
	}
	if c.MemberPoll <= 0 || c.MemberPoll > c.LeaseTTL/3 {
		errs = append(errs, fmt.Errorf("member poll %v: must be positive and at most a third of the lease TTL (%v)", c.MemberPoll, c.LeaseTTL))
	}
	if c.CursorEvery < 0 {
		errs = append(errs, fmt.Errorf("cursor interval %v: must not be negative", c.CursorEvery))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("delivery concurrency %d: must be 1–1024", c.Concurrency))
	}
	if c.RetryScale <= 0 || c.RetryScale > 1 {
		errs = append(errs, fmt.Errorf("retry scale %v: must be in (0, 1]", c.RetryScale))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %v: must not be negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}
