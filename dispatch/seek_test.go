package dispatch

import (
	"github.com/sluicehq/sluice/controlplane"
	"testing"
	"time"
)

// Seeking replays a subscription (and only it) from the start of retention
// or from a time, also when its units are idle at the tail.
func TestSeekReplaysOneSubscription(t *testing.T) {
	e := newEnv(t, memStore(), 2)
	replayed := newReceiver(t, nil)
	other := newReceiver(t, nil)
	e.subscribe("replayed", replayed.URL, nil)
	e.subscribe("other", other.URL, nil)
	d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	first := e.publish(20, "t")
	waitFor(t, "first batch delivered", 10*time.Second, func() bool {
		return len(replayed.delivered()) == 20 && len(other.delivered()) == 20
	})
	time.Sleep(5 * time.Millisecond) // event times are the publisher's clock: keep the batches apart
	middle := time.Now()
	second := e.publish(10, "t")
	waitFor(t, "second batch delivered", 10*time.Second, func() bool { return len(replayed.delivered()) == 30 })
	waitFor(t, "cursors at the tail", 10*time.Second, func() bool {
		var n int64
		for _, l := range e.leases("replayed") {
			n += l.Cursor
		}
		return n == 30
	})

	seek := func(target SeekTarget) []PartitionPosition {
		t.Helper()
		_, inst, parts, err := e.reg.Instance(e.ctx, e.topic, "replayed")
		if err != nil {
			t.Fatal(err)
		}
		pos, err := Seek(e.ctx, e.elog, e.topic, "replayed", inst, parts, target)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reg.MarkSeek(e.ctx, e.topic, "replayed"); err != nil {
			t.Fatal(err)
		}
		d.d.Update(e.snapshot()) // as Watch would
		return pos
	}

	// From a time: only the second batch again.
	pos := seek(SeekTarget{Time: middle})
	var to int64
	for _, p := range pos {
		to += p.Cursor
		if p.Previous == nil {
			t.Errorf("partition %d: no previous cursor reported", p.Partition)
		}
	}
	if to != 20 {
		t.Errorf("seek to the middle: cursors add up to %d, want 20 (the first batch)", to)
	}
	waitFor(t, "second batch replayed", 10*time.Second, func() bool {
		got := replayed.delivered()
		for _, id := range second {
			if got[id] < 2 {
				return false
			}
		}
		return true
	})
	for _, id := range first {
		if n := replayed.delivered()[id]; n != 1 {
			t.Errorf("event %s of the first batch delivered %d times after a seek past it", id, n)
		}
	}

	// From the start of retention: everything once more.
	seek(SeekTarget{Earliest: true})
	// At least twice: if the seek's lease write reaches a unit before the
	// dispatcher sees the new snapshot, the unit restarts twice, and
	// repeats (at-least-once) what it delivered in between.
	waitFor(t, "everything replayed", 10*time.Second, func() bool {
		got := replayed.delivered()
		for _, id := range first {
			if got[id] < 2 {
				return false
			}
		}
		return true
	})
	// The other subscription was not touched.
	for id, n := range other.delivered() {
		if n != 1 {
			t.Errorf("other subscription: %s delivered %d times", id, n)
		}
	}
	positions, err := Positions(e.ctx, e.elog, e.topic, "other", mustInstance(t, e, "other"), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range positions {
		if p.Behind != 0 || p.Cursor != p.Tail || p.Holder != "w1" {
			t.Errorf("other subscription, partition %d: %+v; want current and held by w1", p.Partition, p)
		}
	}

	// To the tail: nothing more is delivered, and Positions says 0 behind.
	seek(SeekTarget{Latest: true})
	waitFor(t, "the replayed subscription current again", 10*time.Second, func() bool {
		ps, err := Positions(e.ctx, e.elog, e.topic, "replayed", mustInstance(t, e, "replayed"), 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Behind != 0 || p.Holder != "w1" {
				return false
			}
		}
		return true
	})
}

func mustInstance(t *testing.T, e *env, sub string) controlplane.SubscriptionInstance {
	t.Helper()
	_, inst, _, err := e.reg.Instance(e.ctx, e.topic, sub)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}
