package controlplane

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// watcher runs watch with ticks the test sends; each tick returns once the
// poll it caused is done.
type watcher struct {
	ticks  chan time.Time
	polled chan struct{}
	snaps  chan *Snapshot
	done   chan error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, r *Registry) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{ticks: make(chan time.Time), polled: make(chan struct{}), snaps: make(chan *Snapshot, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- r.watch(ctx, w.ticks, func(s *Snapshot) { w.snaps <- s }, func() { w.polled <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-w.done; err != nil {
			t.Errorf("watch returned %v", err)
		}
	})
	return w
}

func (w *watcher) tick() {
	w.ticks <- time.Time{}
	<-w.polled
}

func (w *watcher) next(t *testing.T) *Snapshot {
	t.Helper()
	select {
	case s := <-w.snaps:
		return s
	default:
		t.Fatal("no snapshot delivered")
		return nil
	}
}

func (w *watcher) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-w.snaps:
		t.Fatalf("unexpected snapshot of generation %d", s.Generation)
	default:
	}
}

func TestWatch(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		c := newClock()
		r := newRegistry(store, c)
		mustPutTopic(t, r, topic("orders"))
		mustPutSub(t, r, "orders", subscription("audit"))
		w := startWatch(t, r)

		w.tick() // the first poll ran before; this one is idle
		first := w.next(t)
		tc, ok := first.Topic("ORDERS")
		if !ok || len(tc.Subscriptions) != 1 || tc.Keys.Key1 == "" || first.Generation == 0 {
			t.Fatalf("first snapshot: %+v", first)
		}
		w.none(t)

		// Idle: exactly one GET per poll, nothing else.
		const polls = 25
		base := store.Stats()
		for i := 0; i < polls; i++ {
			w.tick()
		}
		idle := store.Stats().Sub(base)
		if idle.Total() != polls || idle.Total(objectlog.OpGet) != polls {
			t.Errorf("%d idle polls cost %s, want get=%d", polls, idle, polls)
		}
		w.none(t)

		// A change is seen at the next poll.
		mustPutTopic(t, r, topic("billing"))
		w.tick()
		second := w.next(t)
		if _, ok := second.Topic("billing"); !ok || second.Generation <= first.Generation {
			t.Errorf("second snapshot (generation %d): %v", second.Generation, second.Topics())
		}
		if _, ok := first.Topic("billing"); ok {
			t.Error("the first snapshot changed")
		}

		// Resync reloads after ResyncEvery even without a change.
		c.advance(DefaultResyncEvery)
		w.tick()
		if third := w.next(t); third.Generation != second.Generation {
			t.Errorf("resync: generation %d, want %d", third.Generation, second.Generation)
		}
	})
}

// A watch on an empty store delivers an empty snapshot and then the first change.
func TestWatchEmptyStore(t *testing.T) {
	r := newRegistry(memStore(t), newClock())
	w := startWatch(t, r)
	w.tick()
	if s := w.next(t); len(s.Topics()) != 0 || s.Generation != 0 {
		t.Fatalf("snapshot of an empty store: %+v", s)
	}
	mustPutTopic(t, r, topic("orders"))
	w.tick()
	if s := w.next(t); len(s.Topics()) != 1 {
		t.Fatalf("after a create: %+v", s.Topics())
	}
}

// The real ticker: Watch stops when its context ends.
func TestWatchStops(t *testing.T) {
	r := newRegistry(memStore(t), newClock())
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	got := make(chan struct{})
	done := make(chan error)
	go func() { done <- r.Watch(ctx, time.Millisecond, func(*Snapshot) { once.Do(func() { close(got) }) }) }()
	<-got
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch = %v", err)
	}
	if err := r.Watch(context.Background(), 0, nil); err == nil {
		t.Error("Watch with a zero interval did not fail")
	}
}
