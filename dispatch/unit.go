package dispatch

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// subConfig is what a unit needs of its subscription; the dispatcher
// replaces it when the subscription changes.
type subConfig struct {
	sub         schemas.Subscription
	filter      *Filter
	maxAttempts int
	ttl         time.Duration
	maxEvents   int
	preferredKB int
	timeout     time.Duration
	secrets     []string // Standard Webhooks signing secrets: the current one, and the previous during a rotation
	// ratePerSecond limits this unit's requests (the endpoint's
	// WebHook-Allowed-Rate, divided among the partitions); 0: no limit.
	ratePerSecond float64
	// deadLetter: nil means dead-lettering is off (events are dropped).
	deadLetter *objectlog.Store
}

// readChunk bounds how many already-read events one step of a unit takes
// from its reader: with Concurrency jobs in flight, it bounds the events a
// unit holds in memory, whatever its backlog.
const readChunk = 5000

// A delivery's life (one job: a batch of events of one unit):
//
//	pending      read and matched, waiting for a slot
//	in flight    the request is out
//	delivered    2xx: settled
//	retrying     written to the unit's retry area with its attempts and due time: settled
//	dead-lettered  written to the dead-letter area (or dropped and counted): settled
//
// The cursor moves past a job only once it is settled, so a crash at any
// point repeats at most the jobs after the last cursor write.

// job is a range of offsets [first, end) and the matched events in it.
type job struct {
	first, end int64
	events     []*Event
	settled    bool
}

// runner works one unit while this worker holds its lease.
type runner struct {
	d     *Dispatcher
	u     unitKey
	cfg   atomic.Pointer[subConfig]
	log   zerolog.Logger
	seeks int64 // the subscription's seek count when the unit was acquired

	stopOnce sync.Once
	release  atomic.Bool   // on stop, release the lease for another worker
	released atomic.Bool   // the lease was released (the unit's lease no longer names this worker)
	stopCh   chan struct{} // closed to stop: take nothing new, drain, write the cursor
	lostCh   chan struct{} // closed when the lease is lost: stop at once, write nothing
	lostOnce sync.Once
	done     chan struct{} // closed when run has returned

	sem      chan struct{}  // delivery slots
	inflight sync.WaitGroup // jobs and retries in flight
	retryDue chan time.Time // due times of retries this unit just wrote

	leaseMu struct {
		sync.Mutex
		lease lease
		ver   objectlog.Version
	}
	track struct {
		sync.Mutex
		jobs    []*job // registered, in offset order; settled ones leave from the front
		cursor  int64  // first offset not settled
		written int64  // cursor in the lease object
		readTo  int64  // the end of the last chunk registered
	}
	advanced chan struct{} // a cursor moved (cap 1)

	// For the watchdog: jobs from intake whose delivery is running.
	jobsInFlight atomic.Int64

	limit struct {
		sync.Mutex
		perSecond float64
		limiter   *rate.Limiter
	}
}

// wait holds a request back to the endpoint's allowed rate.
func (r *runner) wait(ctx context.Context, cfg *subConfig) error {
	if cfg.ratePerSecond <= 0 {
		return nil
	}
	r.limit.Lock()
	if r.limit.limiter == nil || r.limit.perSecond != cfg.ratePerSecond {
		r.limit.perSecond = cfg.ratePerSecond
		r.limit.limiter = rate.NewLimiter(rate.Limit(cfg.ratePerSecond), 1)
	}
	l := r.limit.limiter
	r.limit.Unlock()
	return l.Wait(ctx)
}

func newRunner(d *Dispatcher, u unitKey, cfg *subConfig, l lease, ver objectlog.Version) *runner {
	r := &runner{
		d: d, u: u,
		log:      d.log.With().Str("topic", u.Topic).Str("subscription", u.Sub).Int("partition", u.Partition).Logger(),
		stopCh:   make(chan struct{}),
		lostCh:   make(chan struct{}),
		done:     make(chan struct{}),
		sem:      make(chan struct{}, d.cfg.Concurrency),
		retryDue: make(chan time.Time, 64),
		advanced: make(chan struct{}, 1),
	}
	r.cfg.Store(cfg)
	r.leaseMu.lease, r.leaseMu.ver = l, ver
	r.track.cursor, r.track.written, r.track.readTo = l.Cursor, l.Cursor, l.Cursor
	return r
}

// stop asks the runner to finish: no new work, drain what is in flight,
// write the cursor, and release the lease if release is set.
func (r *runner) stop(release bool) {
	if release {
		r.release.Store(true)
	}
	r.stopOnce.Do(func() { close(r.stopCh) })
}

// lose marks the lease lost: another worker holds the unit, or this
// worker's heartbeat is too old to be sure it does not.
func (r *runner) lose(why string) {
	r.lostOnce.Do(func() {
		r.log.Warn().Str("why", why).Msg("dispatch: lost the unit; stopping without writing")
		r.d.metrics.LeasesLost.Inc()
		close(r.lostCh)
		r.stop(false)
	})
}

// abandon stops the runner without writing, like a lost lease, but
// because the unit must restart (its cursor was moved), not because another
// worker took it.
func (r *runner) abandon(why string) {
	r.lostOnce.Do(func() {
		r.log.Info().Str("why", why).Msg("dispatch: restarting the unit")
		close(r.lostCh)
		r.stop(false)
	})
}

func (r *runner) lost() bool {
	select {
	case <-r.lostCh:
		return true
	default:
		return false
	}
}

// run works the unit until stopped or lost.
func (r *runner) run() {
	defer close(r.done)
	defer r.d.notify()

	// deliverCtx ends in-flight requests: at once when the lease is lost,
	// after DrainTimeout when stopping.
	deliverCtx, cancelDeliver := context.WithCancel(context.Background())
	defer cancelDeliver()
	go func() {
		select {
		case <-r.lostCh:
			cancelDeliver()
		case <-r.stopCh:
			select {
			case <-r.lostCh:
			case <-r.d.clock.After(r.d.cfg.DrainTimeout):
			case <-deliverCtx.Done():
			}
			cancelDeliver()
		case <-deliverCtx.Done():
		}
	}()
	// stopCtx ends reading and waiting for retries.
	stopCtx, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	go func() {
		select {
		case <-r.stopCh:
		case <-deliverCtx.Done():
		}
		cancelStop()
	}()

	var loops sync.WaitGroup
	loops.Add(3)
	go func() { defer loops.Done(); r.intake(stopCtx, deliverCtx) }()
	go func() { defer loops.Done(); r.retries(stopCtx, deliverCtx) }()
	go func() { defer loops.Done(); r.watchdog(stopCtx) }()

	r.checkpoints(stopCtx)
	loops.Wait()
	r.inflight.Wait()
	if r.lost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.writeCursor(ctx, r.release.Load()); err != nil && !errors.Is(err, errLeaseLost) {
		r.log.Warn().Err(err).Msg("dispatch: could not write the final cursor; the next holder repeats deliveries since the last one")
	}
}

// checkpoints writes the cursor as it moves, at most every CursorEvery.
func (r *runner) checkpoints(ctx context.Context) {
	every := r.d.cfg.CursorEvery
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.advanced:
		}
		if wait := every - r.d.clock.Now().Sub(last); every > 0 && !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.d.clock.After(wait):
			}
		}
		last = r.d.clock.Now()
		if err := r.writeCursor(ctx, false); err != nil {
			if errors.Is(err, errLeaseLost) {
				r.lose("a conditional cursor write lost: another worker holds the unit")
				return
			}
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("dispatch: cursor write failed; retrying")
				r.signalAdvanced()
			}
		}
	}
}

func (r *runner) signalAdvanced() {
	select {
	case r.advanced <- struct{}{}:
	default:
	}
}

// writeCursor writes the settled cursor (and releases the lease if asked)
// with a compare-and-swap on the lease version this runner holds.
func (r *runner) writeCursor(ctx context.Context, release bool) error {
	r.track.Lock()
	cursor := r.track.cursor
	r.track.Unlock()
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	if cursor <= r.leaseMu.lease.Cursor && !release {
		return nil
	}
	next := r.leaseMu.lease
	next.Cursor = max(cursor, next.Cursor)
	if release {
		next.Holder = ""
	}
	v, err := r.d.leases.put(ctx, r.u, &next, r.leaseMu.ver, r.d.cfg.WorkerID, r.leaseMu.lease.Epoch)
	if err != nil {
		return err
	}
	r.leaseMu.lease, r.leaseMu.ver = next, v
	if release {
		r.released.Store(true)
	}
	r.track.Lock()
	r.track.written = next.Cursor
	r.track.Unlock()
	return nil
}

// register adds a job at the end of the unit's range.
func (r *runner) register(j *job) {
	r.track.Lock()
	r.track.jobs = append(r.track.jobs, j)
	r.track.Unlock()
}

// settle marks a job settled and moves the cursor past every settled job
// at the front.
func (r *runner) settle(j *job) {
	r.track.Lock()
	j.settled = true
	moved := false
	for len(r.track.jobs) > 0 && r.track.jobs[0].settled {
		r.track.cursor = r.track.jobs[0].end
		r.track.jobs[0] = nil
		r.track.jobs = r.track.jobs[1:]
		moved = true
	}
	r.track.Unlock()
	if moved {
		r.signalAdvanced()
	}
}

// acquireSlot waits for a delivery slot; false if the runner stops first.
func (r *runner) acquireSlot(ctx context.Context) bool {
	select {
	case r.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// intake reads the partition from the cursor, filters, batches and starts
// deliveries.
func (r *runner) intake(stopCtx, deliverCtx context.Context) {
	rd, err := r.d.elog.NewReader(r.u.Topic, r.u.Partition)
	if err != nil {
		r.log.Error().Err(err).Msg("dispatch: cannot read the partition")
		r.lose(err.Error())
		return
	}
	defer rd.Close() // the log's cache keeps what no open reader still needs
	rd.Follow(true)
	r.track.Lock()
	from := r.track.cursor
	r.track.Unlock()
	for {
		if err := rd.SeekOffset(stopCtx, from); err == nil {
			break
		} else if stopCtx.Err() != nil {
			return
		} else {
			r.log.Warn().Err(err).Msg("dispatch: cannot position the reader; retrying")
			if !r.pause(stopCtx, time.Second) {
				return
			}
		}
	}
	r.log.Info().Int64("cursor", from).Int64("offset", rd.Offset()).Msg("dispatch: reading the partition")
	if gap := rd.Offset() - from; gap > 0 {
		r.d.metrics.Dropped.WithLabelValues(r.u.Topic, r.u.Sub).Add(float64(gap))
		r.log.Warn().Int64("events", gap).Msg("dispatch: the cursor was behind the topic's retention; the expired events are counted as dropped")
	}
	chunk := make([]objectlog.Event, 0, 64)
	var skipped int64
	for {
		ev, err := rd.Next(stopCtx)
		if err != nil {
			if stopCtx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				continue
			}
			r.log.Warn().Err(err).Msg("dispatch: read failed; retrying")
			if !r.pause(stopCtx, time.Second) {
				return
			}
			continue
		}
		chunk = append(chunk[:0], ev)
		for rd.Buffered() > 0 && len(chunk) < readChunk {
			ev, err := rd.Next(stopCtx)
			if err != nil {
				break
			}
			chunk = append(chunk, ev)
		}
		if n := rd.Skipped(); n > skipped {
			// Retention deleted events before this subscription got to
			// them: they can no longer be delivered or dead-lettered.
			r.d.metrics.Dropped.WithLabelValues(r.u.Topic, r.u.Sub).Add(float64(n - skipped))
			r.log.Warn().Int64("events", n-skipped).Msg("dispatch: events expired by the topic's retention before they were delivered; counted as dropped")
			skipped = n
		}
		if !r.start(stopCtx, deliverCtx, chunk, rd.Offset()) {
			return
		}
		r.track.Lock()
		r.track.readTo = rd.Offset()
		r.track.Unlock()
	}
}

// start filters a chunk of events, splits the matches into deliveries and
// starts them; end is the offset after the chunk.
func (r *runner) start(stopCtx, deliverCtx context.Context, chunk []objectlog.Event, end int64) bool {
	cfg := r.cfg.Load()
	m := r.d.metrics
	var matched []*Event
	var unmatched int
	for _, le := range chunk {
		e, err := ParseEvent(le.Data)
		if err != nil {
			// Ingest stores only events it parsed; this is damage, not input.
			r.log.Error().Err(err).Int64("offset", le.Offset).Msg("dispatch: stored event cannot be parsed; skipping it")
			unmatched++
			continue
		}
		e.Partition, e.Offset, e.Published = r.u.Partition, le.Offset, le.Committed
		if cfg.filter.Match(&e) {
			matched = append(matched, &e)
		} else {
			unmatched++
		}
	}
	labels := []string{r.u.Topic, r.u.Sub}
	m.Matched.WithLabelValues(labels...).Add(float64(len(matched)))
	m.Unmatched.WithLabelValues(labels...).Add(float64(unmatched))
	first := chunk[0].Offset
	groups := Batches(matched, cfg.maxEvents, cfg.preferredKB)
	if len(groups) == 0 {
		j := &job{first: first, end: end}
		r.register(j)
		r.settle(j)
		return true
	}
	for i, g := range groups {
		j := &job{first: first, end: g[len(g)-1].Offset + 1, events: g}
		if i == len(groups)-1 {
			j.end = end
		}
		first = j.end
		if !r.acquireSlot(stopCtx) {
			return false
		}
		r.jobsInFlight.Add(1)
		r.register(j)
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			defer func() { <-r.sem }()
			defer r.jobsInFlight.Add(-1)
			if r.deliver(deliverCtx, j.events, 0, time.Time{}, Outcome{}) {
				r.settle(j)
			}
		}()
	}
	return true
}

// pause waits d on the dispatcher's clock; false if ctx ends first.
func (r *runner) pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.d.clock.After(d):
		return true
	}
}

// watchdogEvery is how often a unit checks that its cursor can move.
const watchdogEvery = 10 * time.Second

// watchdog restarts the unit if its cursor can no longer move: the oldest
// unsettled delivery has no request running (it ended without being
// delivered, retried or dead-lettered), or the cursor is behind what was
// read with nothing pending, twice in a row. Neither should happen; if it
// does, the unit restarts from its last written cursor, repeating the
// deliveries since then, instead of stalling its partition for good, and
// the error log says what state it was in.
func (r *runner) watchdog(ctx context.Context) {
	strikes := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.d.clock.After(watchdogEvery):
		}
		r.track.Lock()
		jobs, cursor, read := len(r.track.jobs), r.track.cursor, r.track.readTo
		var front job
		if jobs > 0 {
			front = *r.track.jobs[0]
		}
		running := r.jobsInFlight.Load()
		r.track.Unlock()
		if ctx.Err() != nil {
			return
		}
		stuck := (jobs > 0 && !front.settled && running == 0) || (jobs == 0 && cursor < read)
		if !stuck {
			strikes = 0
			continue
		}
		if strikes++; strikes < 2 {
			continue
		}
		r.log.Error().Int64("cursor", cursor).Int64("read_to", read).Int("jobs", jobs).Int64("running", running).
			Int64("job_first", front.first).Int64("job_end", front.end).Int("job_events", len(front.events)).
			Msg("dispatch: the unit's cursor cannot move (a delivery ended unsettled); restarting the unit from its last written cursor")
		r.abandon("its cursor could not move")
		return
	}
}
