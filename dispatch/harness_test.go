package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// fakeClock is a Clock that moves only when a test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock and fires every timer that came due.
// waiting is how many After channels wait for the clock to advance.
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitFor polls cond until it holds or the deadline passes. It waits for
// the system under test to reach a state, not for time to pass: cond is the
// assertion, the deadline only bounds a failure.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver is a webhook endpoint that records what it is sent.
type receiver struct {
	*httptest.Server
	mu struct {
		sync.Mutex
		byID     map[string]int // deliveries per event id
		requests []recorded
	}
	// answer decides the status of each request (nil: 200).
	answer func(r *http.Request, ids []string) int
}

type recorded struct {
	header http.Header
	ids    []string
	status int
}

func newReceiver(t testing.TB, answer func(r *http.Request, ids []string) int) *receiver {
	return newInspectingReceiver(t, answer, nil)
}

// newInspectingReceiver is a receiver that also shows inspect every request.
func newInspectingReceiver(t testing.TB, answer func(r *http.Request, ids []string) int, inspect func(r *http.Request, body []byte)) *receiver {
	rc := &receiver{answer: answer}
	rc.mu.byID = map[string]int{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if inspect != nil {
			inspect(r, body)
		}
		ids := eventIDs(body)
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(r, ids)
		}
		rc.mu.Lock()
		rc.mu.requests = append(rc.mu.requests, recorded{r.Header.Clone(), ids, status})
		if status >= 200 && status <= 204 {
			for _, id := range ids {
				rc.mu.byID[id]++
			}
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// eventIDs reads the ids of a delivery body: one CloudEvent or an array of
// CloudEvents or Event Grid events.
func eventIDs(body []byte) []string {
	var one struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &one) == nil && one.ID != "" {
		return []string{one.ID}
	}
	var many []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &many); err != nil {
		return nil
	}
	ids := make([]string, len(many))
	for i, e := range many {
		ids[i] = e.ID
	}
	return ids
}

func (rc *receiver) delivered() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.mu.byID))
	for k, v := range rc.mu.byID {
		out[k] = v
	}
	return out
}

func (rc *receiver) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.mu.requests...)
}

// env is a store with a topic, a log and a registry.
type env struct {
	t     testing.TB
	ctx   context.Context
	store *objectlog.Store
	elog  *objectlog.Log
	reg   *controlplane.Registry
	topic string
	parts int
	seq   int
}

func newEnv(t testing.TB, store *objectlog.Store, partitions int) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := objectlog.LowLatency
	cfg.PollMax = 50 * time.Millisecond
	elog, err := objectlog.NewLog(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elog.Close() })
	reg := controlplane.New(store, nil)
	e := &env{t: t, ctx: ctx, store: store, elog: elog, reg: reg, topic: "orders", parts: partitions}
	if _, _, err := reg.PutTopic(ctx, schemas.Topic{Name: e.topic, Properties: schemas.TopicProperties{Partitions: partitions}}, "", false); err != nil {
		t.Fatal(err)
	}
	return e
}

func memStore() *objectlog.Store {
	return objectlog.NewStore(objectlog.NewMemDriver(), objectlog.DefaultRetryPolicy)
}

// subscribe creates a subscription delivering to url; edit adjusts it.
func (e *env) subscribe(name, url string, edit func(*schemas.Subscription)) {
	e.t.Helper()
	s := schemas.Subscription{Name: name, Properties: schemas.SubscriptionProperties{
		Destination: schemas.Destination{EndpointType: "WebHook", Properties: schemas.DestinationProperties{EndpointURL: url}},
	}}
	if edit != nil {
		edit(&s)
	}
	if _, _, err := e.reg.PutSubscription(e.ctx, e.topic, s, "", false); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) snapshot() *controlplane.Snapshot {
	e.t.Helper()
	s, err := e.reg.Snapshot(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// publish appends n events round-robin over the partitions and returns their ids.
func (e *env) publish(n int, typ string) []string {
	e.t.Helper()
	ids := make([]string, 0, n)
	byPart := make([][]objectlog.Record, e.parts)
	for i := 0; i < n; i++ {
		e.seq++
		id := "ev-" + strconv.Itoa(e.seq)
		ids = append(ids, id)
		now := time.Now().UTC()
		data := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/test","type":%q,"subject":"orders/%d","time":%q,"data":{"n":%d}}`,
			id, typ, e.seq, now.Format(time.RFC3339Nano), e.seq)
		p := e.seq % e.parts
		byPart[p] = append(byPart[p], objectlog.Record{Data: []byte(data), Time: now})
	}
	for p, recs := range byPart {
		if len(recs) == 0 {
			continue
		}
		if _, err := e.elog.Append(e.ctx, e.topic, p, recs); err != nil {
			e.t.Fatal(err)
		}
	}
	return ids
}

// testConfig is a dispatcher config with short timings.
func testConfig(id string) Config {
	c := DefaultConfig()
	c.WorkerID = id
	c.LeaseTTL = 2 * time.Second
	c.MemberPoll = 100 * time.Millisecond
	c.CursorEvery = 0
	c.RetryScale = 0.001
	c.DrainTimeout = time.Second
	return c
}

// started is a running dispatcher and how to stop it.
type started struct {
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan error
	m      *Metrics
}

func startDispatcher(t testing.TB, l *objectlog.Log, cfg Config, clock Clock, snap *controlplane.Snapshot) *started {
	t.Helper()
	m := NewMetrics(nil)
	d, err := New(l, cfg, Options{Clock: clock, Metrics: m, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	d.Update(snap)
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{d: d, cancel: cancel, done: make(chan error, 1), m: m}
	go func() { s.done <- d.Run(ctx) }()
	t.Cleanup(s.stop)
	return s
}

func (s *started) stop() {
	s.cancel()
	<-s.done
	s.done <- nil // later stops return at once
}

// leases reads every lease object of a subscription, by partition.
func (e *env) leases(sub string) map[int]lease {
	e.t.Helper()
	out := map[int]lease{}
	err := e.store.ListAll(e.ctx, controlplane.WorkPrefix(e.topic, sub), func(o objectlog.ObjectInfo) error {
		if len(o.Key) < len("lease.json") || o.Key[len(o.Key)-len("lease.json"):] != "lease.json" {
			return nil
		}
		data, _, err := e.store.Get(e.ctx, o.Key)
		if err != nil {
			return err
		}
		var l lease
		if err := json.Unmarshal(data, &l); err != nil {
			return err
		}
		out[l.Partition] = l
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
