package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Options are a dispatcher's collaborators; zero values get defaults.
type Options struct {
	Clock   Clock          // default RealClock
	Logger  zerolog.Logger // default: discard
	Metrics *Metrics       // default: unregistered
	Sender  *Sender        // default NewSender(Logger)
	Rand    *rand.Rand     // retry jitter (default: seeded from the clock)
}

// Dispatcher is one dispatch worker. It takes units of work (subscription
// partitions) by lease, delivers their events, and gives them back to
// other workers when they appear or when it stops.
type Dispatcher struct {
	elog    *objectlog.Log
	store   *objectlog.Store
	cfg     Config
	clock   Clock
	log     zerolog.Logger
	metrics *Metrics
	sender  *Sender
	leases  leaseStore
	members *membership

	sched struct {
		sync.Mutex
		s RetrySchedule
	}
	snap    atomic.Pointer[controlplane.Snapshot]
	changed chan struct{} // cap 1: a snapshot arrived or a runner ended
	beatNow chan struct{} // cap 1: beat at once (a newcomer is timing us)
	alone   atomic.Bool   // no other live worker: beat every TTL/2
	held    atomic.Int64  // units held, for the heartbeat

	// Owned by Run's goroutine.
	runners map[unitKey]*runner
	retryAt map[unitKey]time.Time // earliest next acquisition attempt of a unit
	// unheld are units whose lease may name this worker although no runner
	// works them: a runner that ended without releasing, or an acquisition
	// whose outcome is unknown. releaseUnheld settles them.
	unheld   map[unitKey]bool
	warned   map[string]bool // subscriptions already reported as not deliverable
	dlStores map[string]*objectlog.Store
}

// New returns a dispatcher reading l (and keeping its state in l's store).
func New(l *objectlog.Log, cfg Config, opts Options) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Sender == nil {
		opts.Sender = NewSender(opts.Logger)
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(uint64(opts.Clock.Now().UnixNano()), 0x5eed))
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = ulid.Make().String()
	}
	d := &Dispatcher{
		elog: l, store: l.Store(), cfg: cfg, clock: opts.Clock,
		log:     opts.Logger.With().Str("worker", cfg.WorkerID).Logger(),
		metrics: opts.Metrics, sender: opts.Sender,
		leases:  leaseStore{store: l.Store(), clock: opts.Clock},
		members: newMembership(l.Store(), opts.Clock, cfg.WorkerID, cfg.LeaseTTL, cfg.MemberPoll),
		changed: make(chan struct{}, 1),
		beatNow: make(chan struct{}, 1),
		runners: map[unitKey]*runner{}, retryAt: map[unitKey]time.Time{}, warned: map[string]bool{}, unheld: map[unitKey]bool{},
		dlStores: map[string]*objectlog.Store{},
	}
	d.sched.s = RetrySchedule{Scale: cfg.RetryScale, Rand: opts.Rand}
	return d, nil
}

// ID is this worker's name in leases and heartbeats.
func (d *Dispatcher) ID() string { return d.cfg.WorkerID }

// Update gives the dispatcher the current topics and subscriptions.
func (d *Dispatcher) Update(s *controlplane.Snapshot) {
	d.snap.Store(s)
	d.notify()
}

func (d *Dispatcher) notify() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) retryDelay(attempts int, o Outcome) time.Duration {
	d.sched.Lock()
	defer d.sched.Unlock()
	return d.sched.s.Delay(attempts, o)
}

// Run works until ctx ends, then gives every unit back (draining in-flight
// deliveries and writing cursors) and removes its heartbeat.
func (d *Dispatcher) Run(ctx context.Context) error {
	wait := 100 * time.Millisecond
	for {
		err := d.members.beat(ctx, 0)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		d.log.Warn().Err(err).Msg("dispatch: cannot write a heartbeat; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-d.clock.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	d.log.Info().Dur("lease_ttl", d.cfg.LeaseTTL).Msg("dispatch: worker started")
	// The heartbeat has a goroutine of its own: a slow reconcile (many
	// units to acquire from a slow store) must never delay it, or the
	// worker would fence itself out of its own units.
	hbCtx, stopBeats := context.WithCancel(context.Background())
	beatsDone := make(chan struct{})
	go func() { defer close(beatsDone); d.heartbeats(hbCtx) }()
	defer func() {
		stopBeats()
		<-beatsDone
		d.shutdown()
	}()

	var nextPoll time.Time
	for {
		now := d.clock.Now()
		newcomer := false
		if !now.Before(nextPoll) {
			n, err := d.members.observe(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("dispatch: cannot list workers")
			}
			newcomer = n
			d.members.forgetDead(ctx)
			// A lone worker looks for others as often as it beats (TTL/2):
			// a newcomer is seen later, but it is not kept waiting, since it
			// sees this worker's heartbeat change within TTL/2 anyway.
			poll := d.cfg.MemberPoll
			if len(d.members.live()) == 1 {
				poll = d.cfg.LeaseTTL / 2
			}
			nextPoll = d.clock.Now().Add(poll)
		}
		d.alone.Store(len(d.members.live()) == 1)
		if newcomer {
			select {
			case d.beatNow <- struct{}{}:
			default:
			}
		}
		wake := d.reconcile(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next := nextPoll
		if !wake.IsZero() && wake.Before(next) {
			next = wake
		}
		if at, ok := d.members.nextExpiry(); ok && at.Before(next) {
			next = at
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.changed:
		case <-d.clock.After(max(next.Sub(d.clock.Now()), time.Millisecond)):
		}
	}
}

// heartbeats rewrites the heartbeat when it is due, until ctx ends.
func (d *Dispatcher) heartbeats(ctx context.Context) {
	for {
		if d.members.beatDue(d.clock.Now(), d.alone.Load()) {
			if err := d.members.beat(ctx, int(d.held.Load())); err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("dispatch: heartbeat failed; units pause delivering if it keeps failing")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.beatNow:
			d.members.forceBeat()
		case <-d.clock.After(d.cfg.MemberPoll / 4):
		}
	}
}

// shutdown stops every unit, releasing its lease, and leaves.
func (d *Dispatcher) shutdown() {
	for _, r := range d.runners {
		r.stop(true)
	}
	for u, r := range d.runners {
		<-r.done
		delete(d.runners, u)
	}
	d.metrics.Units.Set(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.members.leave(ctx); err != nil {
		d.log.Warn().Err(err).Msg("dispatch: could not remove the heartbeat; others wait a lease TTL before they notice")
	}
	d.log.Info().Msg("dispatch: worker stopped; units released")
}

// units lists the units the current snapshot asks for, with each one's
// subscription settings and start offset.
func (d *Dispatcher) units(ctx context.Context) map[unitKey]*unitWant {
	out := map[unitKey]*unitWant{}
	s := d.snap.Load()
	if s == nil {
		return out
	}
	now := d.clock.Now()
	for _, tc := range s.Topics() {
		for i, sub := range tc.Subscriptions {
			inst := tc.Instances[i]
			cfg, why := d.subConfig(ctx, sub, inst, tc.Topic.Properties.Partitions, now)
			name := tc.Topic.Name + "/" + sub.Name
			if why != "" {
				if !d.warned[name] {
					d.warned[name] = true
					d.log.Warn().Str("topic", tc.Topic.Name).Str("subscription", sub.Name).Str("why", why).Msg("dispatch: not delivering to this subscription")
				}
				continue
			}
			delete(d.warned, name)
			for p := 0; p < tc.Topic.Properties.Partitions; p++ {
				w := &unitWant{cfg: cfg, seeks: inst.Seeks}
				if p < len(inst.StartOffsets) {
					w.start = inst.StartOffsets[p]
				}
				out[unitKey{Topic: tc.Topic.Name, Sub: sub.Name, UID: inst.UID, Partition: p}] = w
			}
		}
	}
	return out
}

type unitWant struct {
	cfg   *subConfig
	start int64
	seeks int64 // the subscription's seek count: a change restarts the unit
}

// subConfig resolves a subscription's delivery settings, or says why it
// cannot be delivered to.
func (d *Dispatcher) subConfig(ctx context.Context, sub schemas.Subscription, inst controlplane.SubscriptionInstance, partitions int, now time.Time) (*subConfig, string) {
	p := sub.Properties
	if p.ExpirationTimeUTC != nil && !now.Before(*p.ExpirationTimeUTC) {
		return nil, "expired at " + p.ExpirationTimeUTC.Format(time.RFC3339)
	}
	if p.ProvisioningState != "" && p.ProvisioningState != controlplane.ProvisioningSucceeded {
		return nil, "provisioning state is " + p.ProvisioningState + ": " + p.ProvisioningMessage
	}
	if p.Destination.EndpointType != "WebHook" {
		return nil, "destination type " + p.Destination.EndpointType + " is not supported"
	}
	f := NewFilter(p.Filter, p.EventDeliverySchema)
	if why := f.Unsupported(); why != "" {
		return nil, why
	}
	c := &subConfig{
		sub: sub, filter: f,
		maxAttempts: 30, ttl: 24 * time.Hour,
		maxEvents:   max(p.Destination.Properties.MaxEventsPerBatch, 1),
		preferredKB: p.Destination.Properties.PreferredBatchSizeInKilobytes,
		timeout:     30 * time.Second,
	}
	if n := inst.AllowedRatePerMinute; n > 0 {
		// The endpoint's WebHook-Allowed-Rate, shared by the units.
		c.ratePerSecond = float64(n) / 60 / float64(max(partitions, 1))
	}
	if p.SigningSecret != "" {
		c.secrets = []string{p.SigningSecret}
	}
	if inst.PreviousSigningSecret != "" && now.Before(inst.PreviousSigningSecretExpires) {
		c.secrets = append(c.secrets, inst.PreviousSigningSecret)
	}
	if s := p.Destination.Properties.DeliveryTimeoutInSeconds; s > 0 {
		c.timeout = time.Duration(s) * time.Second
	}
	if c.preferredKB <= 0 {
		c.preferredKB = 64
	}
	if rp := p.RetryPolicy; rp != nil {
		if rp.MaxDeliveryAttempts > 0 {
			c.maxAttempts = rp.MaxDeliveryAttempts
		}
		if rp.EventTimeToLiveInMinutes > 0 {
			c.ttl = time.Duration(rp.EventTimeToLiveInMinutes) * time.Minute
		}
	}
	switch dl := p.DeadLetterDestination; {
	case dl == nil:
		c.deadLetter = d.store
	case strings.EqualFold(dl.EndpointType, "None"):
		c.deadLetter = nil
	default:
		st, err := d.deadLetterStore(ctx, dl.Properties.URL)
		if err != nil {
			return nil, "dead-letter destination: " + err.Error()
		}
		c.deadLetter = st
	}
	return c, ""
}

func (d *Dispatcher) deadLetterStore(ctx context.Context, url string) (*objectlog.Store, error) {
	if url == "" {
		return d.store, nil
	}
	if st, ok := d.dlStores[url]; ok {
		return st, nil
	}
	st, err := objectlog.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	d.dlStores[url] = st
	return st, nil
}

// reconcile makes the units this worker runs match what the assignment
// gives it: it releases units others should have, stops units whose
// subscription went away, and acquires its own. It returns when it next
// needs to look again (zero: at the next poll).
func (d *Dispatcher) reconcile(ctx context.Context) time.Time {
	want := d.units(ctx)
	keys := make([]unitKey, 0, len(want))
	for u := range want {
		keys = append(keys, u)
	}
	owner := assign(keys, d.members.live())
	for u, r := range d.runners {
		select {
		case <-r.done:
			delete(d.runners, u)
			if !r.released.Load() {
				// Its lease may still name this worker (a final write
				// failed, or a write it thought lost had landed).
				d.unheld[u] = true
			}
			continue
		default:
		}
		w, ok := want[u]
		switch {
		case !ok:
			r.stop(false)
		case owner[u] != d.cfg.WorkerID:
			r.stop(true)
		case w.seeks != r.seeks:
			// Its cursor was moved (and its lease freed, so this runner's
			// next write would fail anyway): restart from the new cursor.
			r.abandon("the subscription's cursors were moved (sub seek)")
		default:
			r.cfg.Store(w.cfg)
		}
	}
	now := d.clock.Now()
	var wake time.Time
	var todo []unitKey
	for u := range want {
		if owner[u] != d.cfg.WorkerID || d.runners[u] != nil {
			continue
		}
		if at, ok := d.retryAt[u]; ok && now.Before(at) {
			if wake.IsZero() || at.Before(wake) {
				wake = at
			}
			continue
		}
		todo = append(todo, u)
	}
	for u := range d.retryAt {
		if _, ok := want[u]; !ok {
			delete(d.retryAt, u)
		}
	}
	d.releaseUnheld(ctx, owner)
	results := d.acquireAll(ctx, todo, want)
	for i, u := range todo {
		res := results[i]
		if res.uncertain {
			d.unheld[u] = true
		}
		switch {
		case res.runner != nil:
			delete(d.retryAt, u)
			delete(d.unheld, u)
			d.runners[u] = res.runner
			go res.runner.run()
		default:
			at := res.retryAt
			if at.IsZero() {
				at = now.Add(d.cfg.MemberPoll)
			}
			d.retryAt[u] = at
			if wake.IsZero() || at.Before(wake) {
				wake = at
			}
		}
	}
	d.metrics.Units.Set(float64(len(d.runners)))
	d.held.Store(int64(len(d.runners)))
	return wake
}

type acquireResult struct {
	runner    *runner
	retryAt   time.Time
	uncertain bool // the lease write failed in a way that may have landed
}

// releaseUnheld releases the leases this worker may hold without working
// them (see unheld) of units that are now another worker's: that worker
// waits for the lease to be free, and this one beats, so it never expires.
// Units that are this worker's are acquired again the usual way.
func (d *Dispatcher) releaseUnheld(ctx context.Context, owner map[unitKey]string) {
	for u := range d.unheld {
		if d.runners[u] != nil || owner[u] == d.cfg.WorkerID {
			continue
		}
		l, ver, found, err := d.leases.get(ctx, u)
		if err != nil {
			continue // looked at again next time
		}
		if !found || l.Holder != d.cfg.WorkerID || l.SubscriptionUID != u.UID {
			delete(d.unheld, u)
			continue
		}
		next := *l
		next.Holder = ""
		if _, err := d.leases.put(ctx, u, &next, ver, d.cfg.WorkerID, l.Epoch); err != nil && !errors.Is(err, errLeaseLost) {
			continue
		}
		delete(d.unheld, u)
		d.log.Info().Str("topic", u.Topic).Str("subscription", u.Sub).Int("partition", u.Partition).Int64("epoch", l.Epoch).Int64("cursor", l.Cursor).
			Msg("dispatch: released a unit whose lease named this worker although it was not working it")
	}
}

// acquireAll tries to acquire units, several at once (a worker starting
// with hundreds of units should not take them one round trip at a time).
// Expiry bookkeeping in membership is not safe for concurrent use, so
// holders are classified here before the writes go out in parallel.
func (d *Dispatcher) acquireAll(ctx context.Context, todo []unitKey, want map[unitKey]*unitWant) []acquireResult {
	results := make([]acquireResult, len(todo))
	if len(todo) == 0 {
		return results
	}
	type read struct {
		l     *lease
		ver   objectlog.Version
		found bool
		err   error
	}
	reads := make([]read, len(todo))
	parallel(len(todo), 16, func(i int) {
		l, v, ok, err := d.leases.get(ctx, todo[i])
		reads[i] = read{l, v, ok, err}
	})
	type plan struct {
		next     *lease
		ver      objectlog.Version
		takeover string
	}
	plans := make([]*plan, len(todo))
	for i, u := range todo {
		rd := reads[i]
		if rd.err != nil {
			if ctx.Err() == nil {
				d.log.Warn().Err(rd.err).Msg("dispatch: cannot read a lease")
			}
			continue
		}
		state, at := classify(rd.l, rd.found, u, d.cfg.WorkerID, d.members.expired)
		w := want[u]
		next := &lease{Topic: u.Topic, Subscription: u.Sub, SubscriptionUID: u.UID, Partition: u.Partition,
			Holder: d.cfg.WorkerID, Epoch: 1, TTLMs: d.cfg.LeaseTTL.Milliseconds(), Cursor: w.start}
		p := &plan{next: next, ver: rd.ver}
		switch state {
		case leaseHeld:
			// Look again at the next poll (a holder handing the unit over
			// releases it within a drain), or when the holder would expire.
			results[i].retryAt = d.clock.Now().Add(d.cfg.MemberPoll)
			if at.Before(results[i].retryAt) {
				results[i].retryAt = at
			}
			continue
		case leaseAbsent:
		case leaseFree:
			next.Epoch = rd.l.Epoch + 1
			if rd.l.SubscriptionUID == u.UID {
				next.Cursor = rd.l.Cursor
			}
		case leaseOurs, leaseExpired:
			next.Epoch, next.Cursor = rd.l.Epoch+1, rd.l.Cursor
			if state == leaseExpired {
				p.takeover = rd.l.Holder
			}
		}
		plans[i] = p
	}
	parallel(len(todo), 16, func(i int) {
		p := plans[i]
		if p == nil {
			return
		}
		u := todo[i]
		v, err := d.leases.put(ctx, u, p.next, p.ver, d.cfg.WorkerID, p.next.Epoch)
		if err != nil {
			// It may have landed (even a loss is only as sure as the read
			// after it): if the unit goes to another worker before this one
			// acquires it again, look, and release it if it names this one.
			results[i].uncertain = true
			if !errors.Is(err, errLeaseLost) && ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("dispatch: cannot write a lease")
			}
			return
		}
		if p.takeover != "" {
			d.metrics.Takeovers.Inc()
			d.log.Info().Str("topic", u.Topic).Str("subscription", u.Sub).Int("partition", u.Partition).Str("from", p.takeover).Int64("epoch", p.next.Epoch).Int64("cursor", p.next.Cursor).Msg("dispatch: took over a unit whose holder stopped beating")
		} else {
			d.log.Info().Str("topic", u.Topic).Str("subscription", u.Sub).Int("partition", u.Partition).Int64("epoch", p.next.Epoch).Int64("cursor", p.next.Cursor).Msg("dispatch: acquired a unit")
		}
		results[i].runner = newRunner(d, u, want[u].cfg, *p.next, v)
		results[i].runner.seeks = want[u].seeks
	})
	return results
}

// parallel runs fn(0..n-1) on at most width goroutines.
func parallel(n, width int, fn func(int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}
