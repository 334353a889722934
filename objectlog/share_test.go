package objectlog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readIDs reads a partition from the start to its tail, checking that
// offsets are dense; safe to call from any goroutine.
func readIDs(ctx context.Context, l *objectlog.Log, topic string, p int) ([]string, error) {
	r, err := l.NewReader(topic, p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readFrom(ctx, r)
}

// readFrom reads from r's position (the start, if not positioned) to the
// tail, checking that offsets are dense from 0.
func readFrom(ctx context.Context, r *objectlog.Reader) ([]string, error) {
	var ids []string
	for want := int64(0); ; want++ {
		ev, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		if ev.Offset != want {
			return ids, fmt.Errorf("offset %d follows offset %d", ev.Offset, want-1)
		}
		ids = append(ids, idFromData(ev.Data))
	}
}

func idFromData(data []byte) string {
	s := string(data)
	i := strings.Index(s, `"id":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`"id":"`):]
	return s[:strings.IndexByte(s, '"')]
}

// countingStore is a memory store that counts segment GETs and wake PUTs
// (Stats counts by operation only), adding latency so that concurrent
// readers overlap as they would on a real store.
func countingStore(t testing.TB, latency time.Duration) (s *objectlog.Store, segGets, wakePuts *atomic.Int64) {
	segGets, wakePuts = new(atomic.Int64), new(atomic.Int64)
	fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Latency: latency, Hook: func(op objectlog.Op, key string) error {
		switch {
		case op == objectlog.OpGet && strings.Contains(key, "/seg/"):
			segGets.Add(1)
		case op == objectlog.OpPut && key == "log/wake.json":
			wakePuts.Add(1)
		}
		return nil
	}})
	return objectlog.NewStore(fd, objectlog.DefaultRetryPolicy), segGets, wakePuts
}

// Ten readers of the same partitions, reading the same segments at once,
// fetch each entry and segment about once between them.
func TestReadersShareFetches(t *testing.T) {
	ctx := context.Background()
	s, segGets, _ := countingStore(t, 300*time.Microsecond)
	w := newLog(t, s, nil)
	const parts, segs, perSeg = 2, 25, 4 // 50 segments
	for p := 0; p < parts; p++ {
		for i := 0; i < segs; i++ {
			batch := make([]objectlog.Record, perSeg)
			for j := range batch {
				batch[j] = rec(fmt.Sprintf("%d-%d-%d", p, i, j))
			}
			if _, err := w.Append(ctx, "t", p, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	// read runs readers per partition, all at once or one after another.
	// Readers one after another are all positioned at the start first, as
	// a dispatcher's subscriptions of a partition are: the cache keeps what
	// one has read for those behind it. (A reader that starts after every
	// other has passed a segment fetches it again: TestCacheDropsWhatEveryReaderPassed.)
	read := func(readers int, staggered bool, mod func(*objectlog.Config)) (segments, gets int64) {
		l := newLog(t, s, mod) // a fresh cache
		base, baseSegs := s.Stats(), segGets.Load()
		start := make(chan struct{})
		var wg, positioned sync.WaitGroup
		for p := 0; p < parts; p++ {
			for i := 0; i < readers; i++ {
				wg.Add(1)
				positioned.Add(1)
				go func() {
					defer wg.Done()
					r, err := l.NewReader("t", p)
					if err == nil && staggered {
						err = r.SeekEarliest(ctx)
					}
					positioned.Done()
					if err != nil {
						t.Error(err)
						return
					}
					defer r.Close()
					<-start
					if staggered {
						time.Sleep(time.Duration(i) * 50 * time.Millisecond) // each starts after the previous one finished
					}
					ids, err := readFrom(ctx, r)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ids) != segs*perSeg || ids[len(ids)-1] != fmt.Sprintf("%d-%d-%d", p, segs-1, perSeg-1) {
						t.Errorf("reader of partition %d read %d events ending in %v", p, len(ids), ids[len(ids)-1:])
					}
				}()
			}
		}
		positioned.Wait()
		close(start)
		wg.Wait()
		return segGets.Load() - baseSegs, s.Stats().Sub(base).Total(objectlog.OpGet)
	}
	seg1, get1 := read(1, false, nil)
	seg10, get10 := read(10, false, nil)
	segLate, _ := read(10, true, nil)
	segOff, _ := read(10, true, func(c *objectlog.Config) { c.ReadCacheBytes = -1 })
	t.Logf("segment GETs (all GETs): 1 reader per partition %d (%d); 10 at once %d (%d); 10 one after another %d, without a cache %d",
		seg1, get1, seg10, get10, segLate, segOff)
	if seg1 != parts*segs {
		t.Fatalf("one reader per partition fetched %d segments, want %d", seg1, parts*segs)
	}
	if float64(seg10) > 1.2*float64(seg1) {
		t.Errorf("10 readers at once fetched %d segments, more than 1.2x one reader's %d", seg10, seg1)
	}
	if float64(segLate) > 1.2*float64(seg1) {
		t.Errorf("10 readers one after another fetched %d segments, more than 1.2x one reader's %d", segLate, seg1)
	}
	if segOff < 5*seg1 {
		t.Errorf("without a cache 10 readers one after another fetched only %d segments: the test shows nothing", segOff)
	}
	// Entries are shared too; what each reader pays alone is its read of
	// low.json (SeekEarliest) and its look past the tail (io.EOF).
	if perReader := int64(2 * (10 - 1) * parts); get10 > get1+perReader {
		t.Errorf("10 readers made %d GETs, one reader %d: more than %d for low.json and the tail", get10, get1, perReader)
	}
}

// The segment cache stays within ReadCacheBytes however far a reader
// reads, and evicted segments are fetched again when read again.
func TestReadCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	s, segGets, _ := countingStore(t, 0)
	w := newLog(t, s, nil)
	const segs, perSeg = 50, 20
	for i := 0; i < segs; i++ {
		batch := make([]objectlog.Record, perSeg)
		for j := range batch {
			batch[j] = event1K(i*perSeg + j)
		}
		if _, err := w.Append(ctx, "t", 0, batch); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 100 << 10 // about four segments of twenty 1 KiB events
	l := newLog(t, s, func(c *objectlog.Config) { c.ReadCacheBytes = limit })
	if got := objectlog.ReadCacheLimit(l); got != limit {
		t.Fatalf("cache limit %d, want %d", got, limit)
	}
	// A reader that stays at the start keeps every segment worth caching:
	// only the bound limits the cache.
	holder, _ := l.NewReader("t", 0)
	if err := holder.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	var peak int64
	for pass := 0; pass < 2; pass++ {
		base := segGets.Load()
		r, _ := l.NewReader("t", 0)
		n := 0
		for {
			_, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			_, _, b := objectlog.CacheUsage(l)
			peak = max(peak, b)
		}
		if n != segs*perSeg {
			t.Fatalf("pass %d read %d events, want %d", pass, n, segs*perSeg)
		}
		if got := segGets.Load() - base; got != segs {
			t.Fatalf("pass %d fetched %d segments, want %d (the early ones were evicted)", pass, got, segs)
		}
	}
	_, cached, _ := objectlog.CacheUsage(l)
	t.Logf("peak cached %d bytes in %d segments (limit %d)", peak, cached, limit)
	if peak > limit || peak == 0 || cached < 2 {
		t.Fatalf("cached bytes peaked at %d with %d segments cached; limit %d", peak, cached, limit)
	}
	holder.Close()
	if _, cached, _ := objectlog.CacheUsage(l); cached != 0 {
		t.Fatalf("%d segments cached after the reader behind the others closed, want 0", cached)
	}
	// The default is used when the config says 0.
	if got := objectlog.ReadCacheLimit(newLog(t, s, func(c *objectlog.Config) { c.ReadCacheBytes = 0 })); got != objectlog.DefaultReadCacheBytes {
		t.Fatalf("ReadCacheBytes 0 gave a limit of %d, want %d", got, objectlog.DefaultReadCacheBytes)
	}
}

// Ten followers waiting at the tail of a partition cost one poll, and a
// commit reaches all of them.
func TestFollowersShareOneTailPoll(t *testing.T) {
	s := openStore(t, "mem://")
	measure := func(n int) int64 {
		l := newLog(t, s, func(c *objectlog.Config) {
			c.PollMin, c.PollMax = 10*time.Millisecond, 10*time.Millisecond
			c.IdleAfter = time.Hour // active polling only
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := make(chan string, n)
		for i := 0; i < n; i++ {
			r, _ := l.NewReader("t", 0)
			if err := r.SeekLatest(ctx); err != nil {
				t.Fatal(err)
			}
			r.Follow(true)
			go func() {
				ev, err := r.Next(ctx)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- idFromData(ev.Data)
			}()
		}
		waitFor(t, 10*time.Second, "every follower waits", func() bool {
			_, _, waiters, _ := objectlog.FollowState(l)
			return waiters == n
		})
		base := s.Stats()
		time.Sleep(500 * time.Millisecond) // the measurement window
		reqs := s.Stats().Sub(base).Total()
		want := fmt.Sprint("commit-", n)
		if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(want)}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if id := <-got; id != want {
				t.Fatalf("follower got %q, want %q", id, want)
			}
		}
		return reqs
	}
	one := measure(1)
	ten := measure(10)
	t.Logf("requests in 500 ms at the tail: 1 follower %d, 10 followers %d", one, ten)
	if one < 10 {
		t.Fatalf("one follower made only %d requests in 500 ms at a 10 ms poll interval", one)
	}
	if float64(ten) > 1.5*float64(one)+5 {
		t.Fatalf("10 followers made %d requests, 1 follower %d: they do not share their polls", ten, one)
	}
}

// Buffered counts what Next returns without a request: the rest of the segment.
func TestBuffered(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	l := newLog(t, s, nil)
	batch := []objectlog.Record{rec("a"), rec("b"), rec("c"), rec("d"), rec("e")}
	if _, err := l.Append(ctx, "t", 0, batch); err != nil {
		t.Fatal(err)
	}
	r, _ := l.NewReader("t", 0)
	if n := r.Buffered(); n != 0 {
		t.Fatalf("before reading: Buffered %d, want 0", n)
	}
	if _, err := r.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.Buffered(); n != 4 {
		t.Fatalf("after the first of five: Buffered %d, want 4", n)
	}
	base := s.Stats()
	for i := 0; r.Buffered() > 0; i++ {
		ev, err := r.Next(ctx)
		if err != nil || idFromData(ev.Data) != string(rune('b'+i)) {
			t.Fatalf("buffered event %d: %q, %v", i, ev.Data, err)
		}
	}
	if d := s.Stats().Sub(base); d.Total() != 0 {
		t.Fatalf("reading buffered events cost %s", d)
	}
	if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the segment: %v, want io.EOF", err)
	}
}

// Every event carries the commit time of its manifest entry, whichever way
// it was read.
func TestEventCommitted(t *testing.T) {
	ctx := context.Background()
	l := newLog(t, openStore(t, "mem://"), nil)
	before := time.Now()
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("a"), rec("b")}); err != nil {
		t.Fatal(err)
	}
	tail, _, err := l.Tail(ctx, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if tail.CommittedAt.Before(before.Add(-time.Second)) || tail.CommittedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("entry committed at %v, around %v expected", tail.CommittedAt, before)
	}
	follower, _ := l.NewReader("t", 0)
	if err := follower.SeekLatest(ctx); err != nil {
		t.Fatal(err)
	}
	follower.Follow(true)
	r, _ := l.NewReader("t", 0)
	for i := 0; i < 2; i++ {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Committed.Equal(tail.CommittedAt) {
			t.Fatalf("event %d: Committed %v, entry says %v", i, ev.Committed, tail.CommittedAt)
		}
	}
	res, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("c")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := follower.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tail, _, _ = l.Tail(ctx, "t", 0)
	if tail.Seq != res.Seq || ev.Committed.IsZero() || !ev.Committed.Equal(tail.CommittedAt) {
		t.Fatalf("followed event: Committed %v, entry %d says %v", ev.Committed, tail.Seq, tail.CommittedAt)
	}
}

// A reader that retention overtakes skips to the first kept event even when
// the shared cache still holds the deleted entries: the missing segment
// sends it to low.json.
func TestRetentionBehindCachedEntries(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	// Entries are cached; segments (a byte of cache) are not.
	l := newLog(t, s, func(c *objectlog.Config) { c.ReadCacheBytes = 1 })
	const n = 2*objectlog.CheckpointSpan + 5
	for i := 0; i < n; i++ {
		if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close() // waits for the checkpoints
	// A reader at the start keeps the entries another reads cached.
	behind, _ := l.NewReader("t", 0)
	if err := behind.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, err := readIDs(ctx, l, "t", 0); err != nil || len(ids) != n {
		t.Fatalf("read %d events (%v)", len(ids), err)
	}
	if entries, _, _ := objectlog.CacheUsage(l); entries < n {
		t.Fatalf("%d entries cached, want all %d", entries, n)
	}
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	if _, err := l.NewJanitor(later).Collect(ctx, "t", 0, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	const kept = 2 * objectlog.CheckpointSpan
	ev, err := behind.Next(ctx)
	if err != nil || ev.Offset != kept || behind.Skipped() != kept {
		t.Fatalf("reader behind retention: offset %d, skipped %d (%v); want offset and skipped %d", ev.Offset, behind.Skipped(), err, kept)
	}
}
