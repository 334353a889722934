package objectlog_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sluicehq/sluice/objectlog"
)

func TestJanitorRetentionAndOrphans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := openStore(t, url)
		l := newLog(t, s, nil)
		const n = 3*objectlog.CheckpointSpan + 10
		for i := 0; i < n; i++ {
			if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		// A writer crashed before writing checkpoint 1: the janitor writes it.
		var ckpts []string
		_ = s.ListAll(ctx, "log/t/0/checkpoint/", func(o objectlog.ObjectInfo) error { ckpts = append(ckpts, o.Key); return nil })
		if len(ckpts) != 3 {
			t.Fatalf("%d checkpoints, want 3", len(ckpts))
		}
		if err := s.Delete(ctx, ckpts[1]); err != nil {
			t.Fatal(err)
		}
		// Orphans: a segment from a crash before commit, one old and one fresh.
		old := "log/t/0/seg/" + ulid.MustNew(ulid.Timestamp(time.Now().Add(-2*time.Hour)), rand.Reader).String() + ".jsonl.zst"
		fresh := "log/t/0/seg/" + ulid.Make().String() + ".jsonl.zst"
		for _, k := range []string{old, fresh} {
			if _, err := s.PutIfAbsent(ctx, k, []byte("orphan")); err != nil {
				t.Fatal(err)
			}
		}
		l = newLog(t, s, nil)
		// Now: nothing is past a day's retention; the old orphan is kept (its
		// file is new, so it may be a commit in progress).
		rep, err := l.NewJanitor(nil).Collect(ctx, "t", 0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if rep.CheckpointsWritten != 1 || rep.RangesExpired != 0 || rep.OrphansDeleted != 0 {
			t.Fatalf("first run: %v", rep)
		}
		if got := readAll(t, l, "t", 0); len(got) != n {
			t.Fatalf("after a no-op collect %d events, want %d", len(got), n)
		}
		// Two days later: the three complete ranges expire, the tail's range stays.
		later := func() time.Time { return time.Now().Add(48 * time.Hour) }
		for run := 0; run < 2; run++ { // a second janitor run finds nothing to do
			rep, err = l.NewJanitor(later).Collect(ctx, "t", 0, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			want := objectlog.JanitorReport{RangesExpired: 3, SegmentsDeleted: 3 * objectlog.CheckpointSpan, EntriesDeleted: 3 * objectlog.CheckpointSpan, OrphansDeleted: 2}
			if run == 1 {
				want = objectlog.JanitorReport{}
			}
			if rep != want {
				t.Fatalf("run %d: %v, want %v", run, rep, want)
			}
		}
		r, _ := l.NewReader("t", 0)
		for want := int64(3 * objectlog.CheckpointSpan); want < n; want++ {
			ev, err := r.Next(ctx)
			if err != nil || ev.Offset != want {
				t.Fatalf("after retention: offset %d (%v), want %d", ev.Offset, err, want)
			}
		}
		if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		// A new writer continues after the tail, and a seek into the deleted
		// past lands on the first retained event.
		res, err := newLog(t, s, nil).Append(ctx, "t", 0, []objectlog.Record{rec("new")})
		if err != nil || res.FirstOffset != n {
			t.Fatalf("append after retention at %d (%v), want %d", res.FirstOffset, err, n)
		}
		if err := r.SeekOffset(ctx, 5); err != nil || r.Offset() != 3*objectlog.CheckpointSpan {
			t.Fatalf("seek into deleted range: at %d (%v)", r.Offset(), err)
		}
		var left int
		_ = s.ListAll(ctx, "log/t/0/", func(objectlog.ObjectInfo) error { left++; return nil })
		// 11 entries + 11 segments + hint + low
		if left > 2*11+2 {
			t.Fatalf("%d objects left after retention", left)
		}
	})
}

func TestJanitorRunVisitsEveryPartitionAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newLog(t, openStore(t, "mem://"), nil)
	for p := 0; p < 3; p++ {
		if _, err := l.Append(ctx, "t", p, []objectlog.Record{rec("x")}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	targets := func() []objectlog.JanitorTarget {
		return []objectlog.JanitorTarget{{Topic: "t", Partitions: 3, Retention: time.Hour}}
	}
	err := l.NewJanitor(nil).Run(ctx, time.Hour, targets, func(topic string, p int, rep objectlog.JanitorReport, err error) {
		if err != nil {
			t.Errorf("collect %s/%d: %v", topic, p, err)
		}
		seen[p] = true
		if len(seen) == 3 {
			cancel() // one full round, then stop
		}
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("Run returned %v after visiting %v", err, seen)
	}
}

// Several janitors may run at once: the low-water mark moves forward by
// compare-and-swap, so racing janitors both succeed, each range expires
// exactly once in effect, and readers resume at the first kept event.
func TestConcurrentJanitors(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	l := newLog(t, s, nil)
	const n = 3*objectlog.CheckpointSpan + 5
	for i := 0; i < n; i++ {
		if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	errs := make(chan error, 4)
	for j := 0; j < 4; j++ {
		go func() {
			_, err := newLog(t, s, nil).NewJanitor(later).Collect(ctx, "t", 0, 24*time.Hour)
			errs <- err
		}()
	}
	for j := 0; j < 4; j++ {
		if err := <-errs; err != nil {
			t.Fatalf("janitor %d: %v", j, err)
		}
	}
	r, _ := newLog(t, s, nil).NewReader("t", 0)
	for want := int64(3 * objectlog.CheckpointSpan); want < n; want++ {
		ev, err := r.Next(ctx)
		if err != nil || ev.Offset != want {
			t.Fatalf("after racing janitors: offset %d (%v), want %d", ev.Offset, err, want)
		}
	}
	if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("more events than kept: %v", err)
	}
	var entries int
	_ = s.ListAll(ctx, "log/t/0/manifest/", func(objectlog.ObjectInfo) error { entries++; return nil })
	if entries != 5 {
		t.Fatalf("%d manifest entries left, want the 5 of the tail's range", entries)
	}
}
