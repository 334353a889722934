package objectlog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// appendSegments appends segs segments of perSeg 1 KiB events to partition 0 of "t".
func appendSegments(t *testing.T, l *objectlog.Log, segs, perSeg int) {
	t.Helper()
	for i := 0; i < segs; i++ {
		batch := make([]objectlog.Record, perSeg)
		for j := range batch {
			batch[j] = event1K(i*perSeg + j)
		}
		if _, err := l.Append(context.Background(), "t", 0, batch); err != nil {
			t.Fatal(err)
		}
	}
}

// readEvents reads n events, calling each (if not nil) after every one.
func readEvents(t *testing.T, r *objectlog.Reader, n int, each func()) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatalf("event %d of %d: %v", i, n, err)
		}
		if each != nil {
			each()
		}
	}
}

// A reader catching up keeps about one segment in the cache, not every
// segment it has passed: the cache is far larger than what it read.
func TestCacheDropsWhatEveryReaderPassed(t *testing.T) {
	ctx := context.Background()
	s, segGets, _ := countingStore(t, 0)
	const segs, perSeg = 200, 5
	appendSegments(t, newLog(t, s, nil), segs, perSeg)

	l := newLog(t, s, nil) // a 64 MiB cache: it would hold all 200 (1 MiB)
	r, _ := l.NewReader("t", 0)
	defer r.Close()
	var peak, peakSegs int64
	readEvents(t, r, segs*perSeg, func() {
		_, n, b := objectlog.CacheUsage(l)
		peak, peakSegs = max(peak, b), max(peakSegs, int64(n))
	})
	if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
	entries, cached, bytes := objectlog.CacheUsage(l)
	oneSegment := int64(perSeg * (1024 + 1 + 64))
	t.Logf("reading %d segments: peak %d bytes in %d segments cached; after: %d entries, %d segments, %d bytes (a segment is ~%d bytes)",
		segs, peak, peakSegs, entries, cached, bytes, oneSegment)
	if peakSegs > 1 || peak > oneSegment+oneSegment/4 {
		t.Errorf("cached up to %d segments (%d bytes) while reading: more than the one being read", peakSegs, peak)
	}
	if peak == 0 {
		t.Errorf("nothing was ever cached: the test shows nothing")
	}
	if bytes > oneSegment || entries > 1 {
		t.Errorf("after reading: %d entries and %d segments (%d bytes) cached, want at most one of each", entries, cached, bytes)
	}
	if got := segGets.Load(); got != segs {
		t.Errorf("fetched %d segments, want %d", got, segs)
	}
}

// Segments between two readers of a partition stay cached until the slower
// one passes them, and it reads them without a request.
func TestCacheKeepsSegmentsBetweenReaders(t *testing.T) {
	ctx := context.Background()
	s, segGets, _ := countingStore(t, 0)
	const segs, perSeg = 20, 5
	appendSegments(t, newLog(t, s, nil), segs, perSeg)

	l := newLog(t, s, nil)
	slow, _ := l.NewReader("t", 0)
	defer slow.Close()
	if err := slow.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	fast, _ := l.NewReader("t", 0)
	defer fast.Close()
	readEvents(t, fast, 15*perSeg, nil)
	if _, n, _ := objectlog.CacheUsage(l); n != 15 {
		t.Fatalf("with the slow reader at segment 0 and the fast one past 15: %d segments cached, want 15", n)
	}
	if got := segGets.Load(); got != 15 {
		t.Fatalf("the fast reader fetched %d segments, want 15", got)
	}

	// The slow reader reads 10 segments the fast one read: no requests,
	// and each leaves the cache once both have passed it.
	base := s.Stats()
	readEvents(t, slow, 10*perSeg, nil)
	if d := s.Stats().Sub(base); d.Total() != 0 {
		t.Errorf("the slow reader's reads within the window cost %s", d)
	}
	if _, n, _ := objectlog.CacheUsage(l); n != 5 {
		t.Errorf("with the readers at segments 10 and 15: %d segments cached, want 5", n)
	}

	// Past the fast reader, the slow one fetches; then both have passed
	// the rest once the fast one catches up.
	readEvents(t, slow, 10*perSeg, nil)
	if got := segGets.Load(); got != segs {
		t.Errorf("%d segment GETs in all, want %d: each segment once", got, segs)
	}
	readEvents(t, fast, 5*perSeg, nil)
	if entries, n, b := objectlog.CacheUsage(l); n != 0 || b != 0 || entries != 0 {
		t.Errorf("both readers at the tail: %d entries, %d segments (%d bytes) still cached", entries, n, b)
	}
}

// A Reader that is closed, or dropped without Close, stops holding the
// cache: what only it had yet to read is dropped.
func TestCacheReleasedByClosedAndDroppedReaders(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	const segs, perSeg = 10, 3
	appendSegments(t, newLog(t, s, nil), segs, perSeg)
	l := newLog(t, s, nil)
	ahead, _ := l.NewReader("t", 0)
	defer ahead.Close()

	hold := func() {
		r, _ := l.NewReader("t", 0)
		if err := r.SeekEarliest(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Closed.
	behind, _ := l.NewReader("t", 0)
	if err := behind.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	readEvents(t, ahead, 5*perSeg, nil)
	if _, n, _ := objectlog.CacheUsage(l); n != 5 {
		t.Fatalf("%d segments cached behind a reader at segment 0, want 5", n)
	}
	behind.Close()
	behind.Close() // idempotent
	if _, n, _ := objectlog.CacheUsage(l); n != 0 {
		t.Errorf("%d segments cached after the reader behind closed, want 0", n)
	}
	if _, err := behind.Next(ctx); !errors.Is(err, objectlog.ErrReaderClosed) {
		t.Errorf("Next after Close: %v, want ErrReaderClosed", err)
	}

	// Dropped: a reader positioned at segment 0 and never closed.
	hold()
	readEvents(t, ahead, 5*perSeg, nil)
	if _, n, _ := objectlog.CacheUsage(l); n != 5 {
		t.Fatalf("%d segments cached behind a dropped but not yet collected reader, want 5", n)
	}
	waitFor(t, 10*time.Second, "the dropped reader is collected and unregistered", func() bool {
		runtime.GC()
		_, n, _ := objectlog.CacheUsage(l)
		return n == 0
	})
}

// getRecorder is a driver that records the keys of GETs that found their object.
type getRecorder struct {
	objectlog.Driver
	mu   sync.Mutex
	keys []string
}

func (g *getRecorder) Get(ctx context.Context, key string) ([]byte, objectlog.ObjectInfo, error) {
	data, info, err := g.Driver.Get(ctx, key)
	if err == nil {
		g.record(key)
	}
	return data, info, err
}

func (g *getRecorder) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	data, err := g.Driver.GetRange(ctx, key, offset, length)
	if err == nil {
		g.record(key)
	}
	return data, err
}

func (g *getRecorder) record(key string) {
	g.mu.Lock()
	g.keys = append(g.keys, key)
	g.mu.Unlock()
}

// take returns the keys recorded since the last call.
func (g *getRecorder) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys
	g.keys = nil
	return k
}

// An entry this process commits is put in the read cache, as a reader
// would decode it from the store, for its followers to read without a GET.
func TestLocalCommitReadWithoutGets(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{{"mem", func(*testing.T) string { return "mem://" }}, {"file", func(t *testing.T) string { return "file://" + t.TempDir() }}} {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rec0 := &getRecorder{Driver: openStore(t, b.url(t)).Driver()}
			s := objectlog.NewStore(rec0, objectlog.DefaultRetryPolicy)
			l := newLog(t, s, nil)

			// Without a reader, a commit is not cached: nobody here would read it.
			if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("warm")}); err != nil {
				t.Fatal(err)
			}
			if entries, segs, _ := objectlog.CacheUsage(l); entries != 0 || segs != 0 {
				t.Fatalf("with no reader, a commit left %d entries and %d segments cached", entries, segs)
			}

			r, _ := l.NewReader("t", 0)
			defer r.Close()
			r.Follow(true)
			if err := r.SeekLatest(ctx); err != nil {
				t.Fatal(err)
			}
			rec0.take()
			base := s.Stats()
			res, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("a"), rec("b")})
			if err != nil {
				t.Fatal(err)
			}
			// The cached forms are what the store holds, decoded. (Looked at
			// before the reader passes them: then they leave the cache.)
			ce, cev, eok, sok := objectlog.CachedCommit(l, "t", 0, res.Seq)
			if !eok || !sok {
				t.Fatalf("entry %d cached %v, segment cached %v; want both", res.Seq, eok, sok)
			}
			for _, want := range []string{"a", "b"} {
				ev, err := r.Next(ctx)
				if err != nil || idFromData(ev.Data) != want {
					t.Fatalf("read %q (%v), want %q", ev.Data, err, want)
				}
			}
			if d := s.Stats().Sub(base); d.Total(objectlog.OpGet) != 0 {
				t.Errorf("an append and a follower's reads of it cost %s; want no GET", d)
			}
			se, sev, err := objectlog.StoredCommit(ctx, l, "t", 0, res.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ce, se) {
				t.Errorf("cached entry %+v, stored %+v", ce, se)
			}
			if !reflect.DeepEqual(cev, sev) || cap(cev) != cap(sev) {
				t.Errorf("cached events %+v (cap %d), decoded from the store %+v (cap %d)", cev, cap(cev), sev, cap(sev))
			}
			for i := range cev {
				if cap(cev[i].Data) != cap(sev[i].Data) {
					t.Errorf("event %d: cached Data cap %d, decoded %d", i, cap(cev[i].Data), cap(sev[i].Data))
				}
			}
			rec0.take()

			// A follower already waiting at the tail when the commit lands
			// GETs neither the entry nor its segment (its watch's polls for
			// the entry before the commit find nothing).
			got := make(chan error, 1)
			go func() {
				ev, err := r.Next(ctx)
				if err == nil && idFromData(ev.Data) != "c" {
					err = fmt.Errorf("read %q, want c", ev.Data)
				}
				got <- err
			}()
			waitFor(t, 10*time.Second, "the follower waits", func() bool {
				_, _, waiters, _ := objectlog.FollowState(l)
				return waiters == 1
			})
			res, err = l.Append(ctx, "t", 0, []objectlog.Record{rec("c")})
			if err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			// The follower's tail poll may run between the manifest PUT and
			// the cache being seeded (the cache may only hold what is
			// committed): then it reads the entry and segment from the
			// store, once. More than that means the cache was not used.
			entryKey := fmt.Sprintf("manifest/%020d.json", res.Seq)
			var entryGets, segGets int
			for _, k := range rec0.take() {
				switch {
				case strings.HasSuffix(k, entryKey):
					entryGets++
				case strings.Contains(k, "/seg/"):
					segGets++
				}
			}
			if entryGets > 1 || segGets > 1 {
				t.Errorf("a waiting follower's read of a local commit: %d GETs of the entry, %d of segments; want at most one each (a poll racing the commit)", entryGets, segGets)
			}
		})
	}
}
