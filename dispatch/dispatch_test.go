package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Every event reaches every subscription once, in both delivery schemas and
// with batching; cursors end at the tail and leases are released on stop.
func TestDeliversEveryEventToEverySubscription(t *testing.T) {
	e := newEnv(t, memStore(), 4)
	single := newReceiver(t, nil)
	batched := newReceiver(t, nil)
	grid := newReceiver(t, nil)
	e.subscribe("single", single.URL, nil)
	e.subscribe("batched", batched.URL, func(s *schemas.Subscription) {
		s.Properties.Destination.Properties.MaxEventsPerBatch = 10
	})
	e.subscribe("grid", grid.URL, func(s *schemas.Subscription) { s.Properties.EventDeliverySchema = schemas.EventGridSchema })
	d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	ids := e.publish(400, "order.created")
	for _, rc := range []*receiver{single, batched, grid} {
		waitFor(t, "all events delivered", 20*time.Second, func() bool { return len(rc.delivered()) == len(ids) })
	}
	d.stop()
	for name, rc := range map[string]*receiver{"single": single, "batched": batched, "grid": grid} {
		got := rc.delivered()
		for _, id := range ids {
			if got[id] != 1 {
				t.Errorf("%s: event %s delivered %d times, want 1", name, id, got[id])
			}
		}
		ls := e.leases(name)
		if len(ls) != 4 {
			t.Fatalf("%s: %d leases, want 4", name, len(ls))
		}
		var total int64
		for p, l := range ls {
			if l.Holder != "" {
				t.Errorf("%s/%d: holder %q after a graceful stop, want released", name, p, l.Holder)
			}
			total += l.Cursor
		}
		if total != int64(len(ids)) {
			t.Errorf("%s: cursors add up to %d, want %d", name, total, len(ids))
		}
	}
	var maxBatch int
	for _, r := range batched.requests() {
		maxBatch = max(maxBatch, len(r.ids))
		if ct := r.header.Get("Content-Type"); ct != "application/cloudevents-batch+json" {
			t.Errorf("batched content type %q", ct)
		}
	}
	if maxBatch < 2 || maxBatch > 10 {
		t.Errorf("largest batch %d, want 2–10", maxBatch)
	}
	for _, r := range single.requests() {
		if len(r.ids) != 1 || r.header.Get("aeg-event-type") != "Notification" || r.header.Get("aeg-delivery-count") != "0" {
			t.Fatalf("single delivery: %d events, headers %v", len(r.ids), r.header)
		}
	}
	if got := testutil.ToFloat64(d.m.Success.WithLabelValues(e.topic, "single")); got != float64(len(ids)) {
		t.Errorf("DeliverySuccessCount %v, want %d", got, len(ids))
	}
}

// A subscription starts at the tail as it was when it was created: events
// published before it are not delivered to it, as in Event Grid.
func TestSubscriptionStartsAtCreation(t *testing.T) {
	e := newEnv(t, memStore(), 2)
	before := e.publish(20, "t")
	rc := newReceiver(t, nil)
	e.subscribe("late", rc.URL, nil)
	startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	after := e.publish(20, "t")
	waitFor(t, "new events delivered", 10*time.Second, func() bool { return len(rc.delivered()) >= len(after) })
	got := rc.delivered()
	for _, id := range before {
		if got[id] != 0 {
			t.Errorf("event %s, published before the subscription, was delivered", id)
		}
	}
}

// Basic filters decide what is delivered; unmatched events still move the cursor.
func TestBasicFilters(t *testing.T) {
	e := newEnv(t, memStore(), 1)
	rc := newReceiver(t, nil)
	e.subscribe("created", rc.URL, func(s *schemas.Subscription) {
		s.Properties.Filter = &schemas.Filter{IncludedEventTypes: []string{"Order.Created"}, SubjectBeginsWith: "ORDERS/"}
	})
	d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	want := e.publish(10, "order.created")
	e.publish(15, "order.deleted")
	want = append(want, e.publish(5, "order.created")...)
	waitFor(t, "cursor at the tail", 10*time.Second, func() bool { return e.leases("created")[0].Cursor == 30 })
	got := rc.delivered()
	if len(got) != len(want) {
		t.Fatalf("delivered %d events, want %d (%v)", len(got), len(want), sortedKeys(got))
	}
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times", id, got[id])
		}
	}
	if m := testutil.ToFloat64(d.m.Unmatched.WithLabelValues(e.topic, "created")); m != 15 {
		t.Errorf("UnmatchedEventCount %v, want 15", m)
	}
}

// Failures are retried from the retry area without blocking the partition;
// aeg-delivery-count counts the attempts.
func TestRetriesDoNotBlockThePartition(t *testing.T) {
	e := newEnv(t, memStore(), 1)
	var mu sync.Mutex
	attempts := map[string]int{}
	others := 0
	rc := newReceiver(t, func(r *http.Request, ids []string) int {
		mu.Lock()
		defer mu.Unlock()
		attempts[ids[0]]++
		// ev-1 fails until every other event has been delivered: if its
		// retries held the partition up, that would never happen (it would
		// end dead-lettered, and never delivered).
		if ids[0] == "ev-1" && (others < 49 || attempts[ids[0]] < 2) {
			return http.StatusInternalServerError
		}
		if ids[0] != "ev-1" && attempts[ids[0]] == 1 {
			others++
		}
		return http.StatusOK
	})
	e.subscribe("sub", rc.URL, nil)
	startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	ids := e.publish(50, "t")
	waitFor(t, "every event delivered", 20*time.Second, func() bool { return len(rc.delivered()) == len(ids) })
	var counts []string
	var firstOthers int = -1
	for i, r := range rc.requests() {
		if r.ids[0] == "ev-1" {
			counts = append(counts, r.header.Get("aeg-delivery-count"))
		} else if firstOthers < 0 {
			firstOthers = i
		}
	}
	for i, c := range counts {
		if c != strconv.Itoa(i) {
			t.Errorf("aeg-delivery-count of the failing event: %v, want 0,1,2,… (one per attempt)", counts)
			break
		}
	}
	if len(counts) < 2 {
		t.Errorf("the failing event was attempted %d times, want at least 2", len(counts))
	}
	// The other 49 were delivered while ev-1 waited for its retries.
	var beforeLast int
	for _, r := range rc.requests() {
		if r.ids[0] == "ev-1" && r.status == 200 {
			break
		}
		if r.ids[0] != "ev-1" {
			beforeLast++
		}
	}
	if beforeLast != 49 {
		t.Errorf("%d other events delivered before the failing one succeeded, want all 49", beforeLast)
	}
	waitFor(t, "retry area empty", 5*time.Second, func() bool {
		n := 0
		_ = e.store.ListAll(e.ctx, "work/", func(o objectlog.ObjectInfo) error {
			if strings.Contains(o.Key, "/retry/") {
				n++
			}
			return nil
		})
		return n == 0
	})
}

// deadLetters reads every dead-letter record of a subscription.
func deadLetters(t *testing.T, e *env, sub string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := ListDeadLetters(e.ctx, e.store, e.topic, sub, func(key string, recs []json.RawMessage) error {
		for _, r := range recs {
			var m map[string]any
			if err := json.Unmarshal(r, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeadLetterReasons(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		attempts int // maxDeliveryAttempts
		reason   string
		tries    float64
	}{
		{"bad request is not retried", 400, 30, ReasonNonRetriable, 1},
		{"unauthorized is not retried", 401, 30, ReasonNonRetriable, 1},
		{"forbidden is not retried", 403, 30, ReasonNonRetriable, 1},
		{"too large is not retried", 413, 30, ReasonNonRetriable, 1},
		{"server errors until attempts run out", 500, 3, ReasonMaxDeliveryAttempts, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, memStore(), 1)
			rc := newReceiver(t, func(*http.Request, []string) int { return c.status })
			e.subscribe("sub", rc.URL, func(s *schemas.Subscription) {
				s.Properties.RetryPolicy = &schemas.RetryPolicy{MaxDeliveryAttempts: c.attempts}
			})
			d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
			e.publish(3, "t")
			waitFor(t, "three dead letters", 20*time.Second, func() bool { return len(deadLetters(t, e, "sub")) == 3 })
			for _, dl := range deadLetters(t, e, "sub") {
				if dl["deadLetterReason"] != c.reason || dl["deliveryAttempts"] != c.tries || dl["lastHttpStatusCode"] != float64(c.status) {
					t.Errorf("dead letter %v: want reason %s after %v attempts, status %d", dl, c.reason, c.tries, c.status)
				}
				for _, f := range []string{"publishTime", "lastDeliveryAttemptTime", "lastDeliveryOutcome", "id", "type"} {
					if _, ok := dl[f]; !ok {
						t.Errorf("dead letter without %s: %v", f, dl)
					}
				}
			}
			if got := len(rc.requests()); got != int(c.tries)*3 {
				t.Errorf("%d requests, want %v", got, c.tries*3)
			}
			if n := testutil.ToFloat64(d.m.DeadLettered.WithLabelValues(e.topic, "sub")); n != 3 {
				t.Errorf("DeadLetteredCount %v", n)
			}
		})
	}
}

// With dead-lettering off, undeliverable events are dropped and counted.
func TestDeadLetteringOffDropsAndCounts(t *testing.T) {
	e := newEnv(t, memStore(), 1)
	rc := newReceiver(t, func(*http.Request, []string) int { return 400 })
	e.subscribe("sub", rc.URL, func(s *schemas.Subscription) {
		s.Properties.DeadLetterDestination = &schemas.DeadLetterDestination{EndpointType: "None"}
	})
	d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	e.publish(4, "t")
	waitFor(t, "drops counted", 10*time.Second, func() bool {
		return testutil.ToFloat64(d.m.Dropped.WithLabelValues(e.topic, "sub")) == 4
	})
	if dls := deadLetters(t, e, "sub"); len(dls) != 0 {
		t.Errorf("%d dead letters written with dead-lettering off", len(dls))
	}
}

// TTL counts from the first attempt: with a one-minute TTL the schedule
// (10 s, 30 s, 1 min) runs out at the third failure. The clock is fake, so
// the test takes no minutes.
func TestTimeToLiveDeadLetters(t *testing.T) {
	e := newEnv(t, memStore(), 1)
	var calls atomic.Int64
	rc := newReceiver(t, func(*http.Request, []string) int { calls.Add(1); return 500 })
	e.subscribe("sub", rc.URL, func(s *schemas.Subscription) {
		s.Properties.RetryPolicy = &schemas.RetryPolicy{EventTimeToLiveInMinutes: 1}
	})
	clock := newFakeClock()
	cfg := testConfig("w1")
	cfg.RetryScale = 1
	startDispatcher(t, e.elog, cfg, clock, e.snapshot())
	e.publish(1, "t")
	waitFor(t, "dead letter", 20*time.Second, func() bool {
		clock.Advance(time.Second)
		return len(deadLetters(t, e, "sub")) == 1
	})
	dl := deadLetters(t, e, "sub")[0]
	if dl["deadLetterReason"] != ReasonTTL || dl["deliveryAttempts"] != float64(3) || calls.Load() != 3 {
		t.Errorf("dead letter %v after %d calls; want TimeToLiveExceeded after 3 attempts", dl, calls.Load())
	}
}

// A worker whose cursor write was delayed past a takeover cannot move the
// cursor back: the write is conditional on the lease version it held.
func TestFencedHolderCannotMoveCursorBack(t *testing.T) {
	mem := objectlog.NewMemDriver()
	var paused atomic.Bool
	resume := make(chan struct{})
	entered := make(chan string, 100)
	fa := objectlog.NewFaultDriver(mem, objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		if paused.Load() && strings.HasPrefix(key, "work/") { // leases, heartbeats; reads of the log go on
			select {
			case entered <- string(op) + " " + key:
			default:
			}
			<-resume // the request is held "on the wire" until the test lets it go
		}
		return nil
	}})
	storeA := objectlog.NewStore(fa, objectlog.RetryPolicy{MaxAttempts: 1})
	storeB := objectlog.NewStore(mem, objectlog.DefaultRetryPolicy)
	e := newEnv(t, storeB, 1)
	rc := newReceiver(t, nil)
	e.subscribe("sub", rc.URL, nil)
	logA, err := objectlog.NewLog(storeA, objectlog.LowLatency)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	a := startDispatcher(t, logA, testConfig("A"), clock, e.snapshot())
	var resumeOnce sync.Once
	let := func() { resumeOnce.Do(func() { close(resume) }) }
	t.Cleanup(let) // runs before a's stop: a failed test must not leave A blocked
	e.publish(10, "t")
	waitFor(t, "A's cursor at 10", 10*time.Second, func() bool { return e.leases("sub")[0].Cursor == 10 })
	if l := e.leases("sub")[0]; l.Holder != "A" || l.Epoch != 1 {
		t.Fatalf("lease %+v, want held by A in epoch 1", l)
	}

	// Pause A: its next cursor write is sent but held in the wrapper.
	paused.Store(true)
	e.publish(10, "t")
	var held string
	waitFor(t, "A's cursor write held", 10*time.Second, func() bool {
		for {
			select {
			case k := <-entered:
				if strings.HasSuffix(k, "lease.json") {
					held = k
				}
				continue
			default:
			}
			return held != ""
		}
	})

	// B sees A's heartbeat unchanged for a TTL on its own clock and takes over.
	b := startDispatcher(t, e.elog, testConfig("B"), clock, e.snapshot())
	waitFor(t, "B holds the unit", 20*time.Second, func() bool {
		clock.Advance(200 * time.Millisecond)
		return e.leases("sub")[0].Holder == "B"
	})
	e.publish(10, "t")
	waitFor(t, "B's cursor at 30", 10*time.Second, func() bool { return e.leases("sub")[0].Cursor == 30 })

	// Let A's held write (cursor 20, old version) reach the store.
	paused.Store(false)
	let()
	waitFor(t, "A fenced", 10*time.Second, func() bool { return testutil.ToFloat64(a.m.LeasesLost) == 1 })
	a.stop()
	l := e.leases("sub")[0]
	if l.Cursor != 30 || l.Holder != "B" || l.Epoch != 2 {
		t.Errorf("lease after A's late write: %+v; want cursor 30 held by B in epoch 2", l)
	}
	if n := testutil.ToFloat64(b.m.Takeovers); n != 1 {
		t.Errorf("B took over %v units, want 1", n)
	}
	got := rc.delivered()
	if len(got) != 30 {
		t.Errorf("%d distinct events delivered, want 30", len(got))
	}
}

// Workers spread units between them and hand them over when one stops.
func TestWorkersShareUnitsAndHandOver(t *testing.T) {
	e := newEnv(t, memStore(), 4)
	rc := newReceiver(t, nil)
	e.subscribe("sub-a", rc.URL, nil)
	e.subscribe("sub-b", rc.URL, nil)
	e.subscribe("sub-c", rc.URL, nil)
	snap := e.snapshot()
	ws := []*started{
		startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, snap),
		startDispatcher(t, e.elog, testConfig("w2"), RealClock{}, snap),
		startDispatcher(t, e.elog, testConfig("w3"), RealClock{}, snap),
	}
	waitFor(t, "12 units spread 4/4/4", 20*time.Second, func() bool {
		for _, w := range ws {
			if testutil.ToFloat64(w.m.Units) != 4 {
				return false
			}
		}
		return true
	})
	ids := e.publish(300, "t")
	ws[0].stop() // graceful: its units are released and taken by the others
	waitFor(t, "units 6/6", 20*time.Second, func() bool {
		return testutil.ToFloat64(ws[1].m.Units) == 6 && testutil.ToFloat64(ws[2].m.Units) == 6
	})
	more := e.publish(300, "t")
	want := 3 * (len(ids) + len(more))
	waitFor(t, "everything delivered", 20*time.Second, func() bool {
		n := 0
		for _, c := range rc.delivered() {
			n += c
		}
		return n >= want
	})
}

// Lease expiry never compares two machines' clocks: a worker whose wall
// clock is 26 years behind (its heartbeat and lease times look ancient) is
// alive as long as its heartbeat keeps changing, and nobody takes its units.
func TestTakeoverIgnoresClockSkew(t *testing.T) {
	e := newEnv(t, memStore(), 4)
	rc := newReceiver(t, nil)
	e.subscribe("sub-a", rc.URL, nil)
	e.subscribe("sub-b", rc.URL, nil)
	past, now := newFakeClock(), newFakeClock()
	past.Advance(-26 * 365 * 24 * time.Hour)
	a := startDispatcher(t, e.elog, testConfig("A"), past, e.snapshot())
	waitFor(t, "A holds the units", 10*time.Second, func() bool { return testutil.ToFloat64(a.m.Units) == 8 })
	b := startDispatcher(t, e.elog, testConfig("B"), now, e.snapshot())
	// Both clocks run at the same rate; 10 lease TTLs pass.
	cfg := testConfig("")
	for elapsed := time.Duration(0); elapsed < 10*cfg.LeaseTTL; elapsed += cfg.MemberPoll / 2 {
		past.Advance(cfg.MemberPoll / 2)
		now.Advance(cfg.MemberPoll / 2)
		time.Sleep(2 * time.Millisecond) // let the workers run between ticks
	}
	if n := testutil.ToFloat64(b.m.Takeovers); n != 0 {
		t.Errorf("B took over %v units of a live worker whose clock is behind", n)
	}
	if n := testutil.ToFloat64(a.m.LeasesLost); n != 0 {
		t.Errorf("A lost %v units while alive", n)
	}
	// The units were shared by hand-over, not taken.
	if ua, ub := testutil.ToFloat64(a.m.Units), testutil.ToFloat64(b.m.Units); ua+ub != 8 || ub == 0 {
		t.Errorf("units A=%v B=%v, want 8 shared between them", ua, ub)
	}
}

// A subscription far behind costs no more memory than one that is current:
// with every delivery slot busy, the unit stops reading, so its backlog
// stays in the store (invariant 6).
func TestBacklogStaysInTheStore(t *testing.T) {
	store := memStore()
	e := newEnv(t, store, 1)
	release := make(chan struct{})
	var blocked atomic.Int64
	rc := newReceiver(t, func(r *http.Request, ids []string) int {
		blocked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return 200
	})
	e.subscribe("sub", rc.URL, nil)
	for i := 0; i < 200; i++ { // 200 segments of 100 events
		e.publish(100, "t")
	}
	segGets := func() int64 {
		n := int64(0)
		for res, c := range store.Stats()[objectlog.OpGet] {
			_ = res
			n += c
		}
		return n
	}
	base := segGets()
	cfg := testConfig("w1")
	startDispatcher(t, e.elog, cfg, RealClock{}, e.snapshot())
	t.Cleanup(func() { close(release) }) // before the dispatcher's stop, which drains
	waitFor(t, "every delivery slot busy", 10*time.Second, func() bool { return blocked.Load() >= int64(cfg.Concurrency) })
	time.Sleep(200 * time.Millisecond) // a window in which an unbounded reader would read on
	// Reads so far: the lease, the retry area's listing, low.json, and the
	// first segment with its entry; nothing like the 200 segments behind it.
	if got := segGets() - base; got > 10 {
		t.Errorf("%d GETs with all slots busy and 20,000 events behind: the backlog is being read into memory", got)
	}
	if got := blocked.Load(); got != int64(cfg.Concurrency) {
		t.Errorf("%d requests in flight, want the %d slots", got, cfg.Concurrency)
	}
}

// A lease write can land although its writer saw it fail (the answer was
// lost, or its context ended). The writer's next write must still succeed:
// the lease is its own (same holder, same epoch), not lost. Another
// holder's lease stays a loss.
func TestLeaseWriteThatLandedUnseenIsStillOurs(t *testing.T) {
	ctx := context.Background()
	store := memStore()
	ls := leaseStore{store: store, clock: newFakeClock()}
	u := unitKey{Topic: "orders", Sub: "sub", UID: "uid", Partition: 0}
	l := &lease{Topic: "orders", Subscription: "sub", SubscriptionUID: "uid", Holder: "A", Epoch: 3, Cursor: 10}
	v1, err := ls.put(ctx, u, l, "", "A", 3)
	if err != nil {
		t.Fatal(err)
	}
	// A's write of cursor 20 lands, but A never learns its version.
	landed := *l
	landed.Cursor = 20
	if _, err := ls.put(ctx, u, &landed, v1, "A", 3); err != nil {
		t.Fatal(err)
	}
	next := *l
	next.Cursor = 30
	if _, err := ls.put(ctx, u, &next, v1, "A", 3); err != nil {
		t.Fatalf("A's next write from the version it knows: %v, want success over its own landed write", err)
	}
	if got, _, _, _ := ls.get(ctx, u); got.Cursor != 30 || got.Holder != "A" || got.Epoch != 3 {
		t.Errorf("lease %+v, want A's cursor 30 in epoch 3", got)
	}
	// B takes over (epoch 4). A's write from any older version is lost.
	_, vb, _, _ := ls.get(ctx, u)
	taken := *l
	taken.Holder, taken.Epoch = "B", 4
	if _, err := ls.put(ctx, u, &taken, vb, "B", 4); err != nil {
		t.Fatal(err)
	}
	stale := *l
	stale.Cursor = 40
	if _, err := ls.put(ctx, u, &stale, v1, "A", 3); !errors.Is(err, errLeaseLost) {
		t.Errorf("A's write after B took over: %v, want errLeaseLost", err)
	}
	if got, _, _, _ := ls.get(ctx, u); got.Holder != "B" || got.Cursor != 10 {
		t.Errorf("lease %+v, want B's, cursor 10", got)
	}
}

// A worker whose runner ended without releasing its lease (here: the
// release write failed) while the unit moved to another worker must release
// it when it can: the other worker waits for the lease to be free, and this
// one keeps beating, so the lease never expires. Without that, the unit is
// never worked again.
func TestWorkerReleasesALeaseItHoldsWithoutWorkingIt(t *testing.T) {
	mem := objectlog.NewMemDriver()
	var failLeases atomic.Bool
	fa := objectlog.NewFaultDriver(mem, objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		if failLeases.Load() && op == objectlog.OpPutIfMatch && strings.HasSuffix(key, "lease.json") {
			return objectlog.ErrTransient
		}
		return nil
	}})
	storeA := objectlog.NewStore(fa, objectlog.RetryPolicy{MaxAttempts: 1})
	e := newEnv(t, objectlog.NewStore(mem, objectlog.DefaultRetryPolicy), 4)
	rc := newReceiver(t, nil)
	e.subscribe("sub", rc.URL, nil)
	logA, err := objectlog.NewLog(storeA, objectlog.LowLatency)
	if err != nil {
		t.Fatal(err)
	}
	a := startDispatcher(t, logA, testConfig("A"), RealClock{}, e.snapshot())
	waitFor(t, "A holds the 4 units", 10*time.Second, func() bool { return testutil.ToFloat64(a.m.Units) == 4 })

	// A cannot write leases when B arrives: the units it hands over end
	// without a release, and their leases go on naming A, which beats.
	failLeases.Store(true)
	b := startDispatcher(t, e.elog, testConfig("B"), RealClock{}, e.snapshot())
	waitFor(t, "A hands over half", 10*time.Second, func() bool { return testutil.ToFloat64(a.m.Units) == 2 })
	if n := testutil.ToFloat64(b.m.Units); n != 0 {
		t.Fatalf("B works %v units while A's leases name A", n)
	}
	failLeases.Store(false)
	waitFor(t, "B works its 2 units", 10*time.Second, func() bool { return testutil.ToFloat64(b.m.Units) == 2 })
	ids := e.publish(100, "t")
	waitFor(t, "every event delivered", 10*time.Second, func() bool { return len(rc.delivered()) == len(ids) })
	holders := map[string]int{}
	for _, l := range e.leases("sub") {
		holders[l.Holder]++
	}
	if holders["A"] != 2 || holders["B"] != 2 {
		t.Errorf("lease holders %v, want A 2 and B 2", holders)
	}
}

// The watchdog restarts a unit whose oldest delivery ended without being
// settled (nothing can move its cursor again), and leaves alone one whose
// delivery is merely slow.
func TestWatchdogRestartsAUnitWhoseCursorCannotMove(t *testing.T) {
	clock := newFakeClock()
	d := &Dispatcher{clock: clock, cfg: testConfig("w"), metrics: NewMetrics(nil)}
	r := newRunner(d, unitKey{Topic: "t", Sub: "s", Partition: 0}, &subConfig{}, lease{Cursor: 5}, "v1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); r.watchdog(ctx) }()
	waiting := func() {
		waitFor(t, "the watchdog waiting", 5*time.Second, func() bool { return clock.waiting() > 0 })
	}
	tick := func() { waiting(); clock.Advance(watchdogEvery) }

	slow := &job{first: 5, end: 10}
	r.jobsInFlight.Add(1) // its request is running
	r.register(slow)
	for i := 0; i < 3; i++ {
		tick()
	}
	waiting() // it looked, and waits again
	if r.lost() {
		t.Fatal("the watchdog restarted a unit whose delivery is still running")
	}
	r.jobsInFlight.Add(-1) // the delivery ended without settling the job
	tick()
	waiting()
	if r.lost() {
		t.Fatal("restarted at the first sighting; it should look twice")
	}
	tick()
	waitFor(t, "the unit restarted", 5*time.Second, r.lost)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not return after restarting the unit")
	}
}
