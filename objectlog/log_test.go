package objectlog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/miniotest"
	"github.com/sluicehq/sluice/objectlog"
)

// logBackend is a store the log tests run on; url is "" for mem (one process only).
type logBackend struct {
	name string
	url  func(t testing.TB) string
}

var logBackends = []logBackend{
	{"mem", func(testing.TB) string { return "mem://" }},
	{"file", func(t testing.TB) string { return "file://" + t.TempDir() }},
	{"minio", func(t testing.TB) string { return miniotest.Bucket(t) }},
}

// forEachBackend runs f as a subtest per backend, named …/mem, …/file, …/minio.
func forEachBackend(t *testing.T, f func(t *testing.T, url string)) {
	for _, b := range logBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b.url(t)) })
	}
}

func openStore(t testing.TB, url string) *objectlog.Store {
	t.Helper()
	s, err := objectlog.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLog(t testing.TB, s *objectlog.Store, mod func(*objectlog.Config)) *objectlog.Log {
	t.Helper()
	cfg := objectlog.DefaultConfig()
	cfg.PollMin, cfg.PollMax = time.Millisecond, 20*time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	l, err := objectlog.NewLog(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func rec(id string) objectlog.Record {
	return objectlog.Record{Data: []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"test","type":"t"}`, id)), Time: time.Now()}
}

func idOf(t testing.TB, data []byte) string {
	var v struct{ ID string }
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("event is not JSON: %q: %v", data, err)
	}
	return v.ID
}

// readAll reads a partition from the start and checks offsets are dense.
func readAll(t testing.TB, l *objectlog.Log, topic string, p int) []string {
	t.Helper()
	r, err := l.NewReader(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for want := int64(0); ; want++ {
		ev, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids
		}
		if err != nil {
			t.Fatalf("read %s/%d at offset %d: %v", topic, p, want, err)
		}
		if ev.Offset != want {
			t.Fatalf("offset %d follows offset %d", ev.Offset, want-1)
		}
		ids = append(ids, idOf(t, ev.Data))
	}
}

func TestAppendRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		l := newLog(t, openStore(t, url), nil)
		var want []string
		for i := 0; i < 5; i++ {
			batch := []objectlog.Record{rec(fmt.Sprint(i, "a")), rec(fmt.Sprint(i, "b"))}
			res, err := l.Append(ctx, "orders", 0, batch)
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstOffset != int64(2*i) {
				t.Fatalf("append %d got first offset %d, want %d", i, res.FirstOffset, 2*i)
			}
			want = append(want, fmt.Sprint(i, "a"), fmt.Sprint(i, "b"))
		}
		if got := readAll(t, l, "orders", 0); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("read %v, want %v", got, want)
		}
		// A second Log (a new process, in effect) sees the same and continues the offsets.
		l2 := newLog(t, openStore(t, url), nil)
		if url == "mem://" {
			l2 = newLog(t, l.Store(), nil)
		}
		res, err := l2.Append(ctx, "orders", 0, []objectlog.Record{rec("late")})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstOffset != 10 {
			t.Fatalf("new writer appended at offset %d, want 10", res.FirstOffset)
		}
		if got := readAll(t, l2, "orders", 0); len(got) != 11 || got[10] != "late" {
			t.Fatalf("after second writer: %v", got)
		}
		// Other partitions are independent.
		if got := readAll(t, l2, "orders", 1); len(got) != 0 {
			t.Fatalf("partition 1 has %v", got)
		}
	})
}

func TestAppendRejectsBadRecords(t *testing.T) {
	l := newLog(t, openStore(t, "mem://"), nil)
	ctx := context.Background()
	for name, recs := range map[string][]objectlog.Record{
		"none":    nil,
		"empty":   {{Data: nil}},
		"newline": {rec("a"), {Data: []byte("{\"a\":\n1}")}},
	} {
		if _, err := l.Append(ctx, "t", 0, recs); err == nil {
			t.Errorf("%s: append succeeded", name)
		}
	}
	if _, err := l.Append(ctx, "../x", 0, []objectlog.Record{rec("a")}); !errors.Is(err, objectlog.ErrInvalidKey) {
		t.Errorf("bad topic name: %v", err)
	}
	if got := l.Store().Stats().Total(); got != 0 {
		t.Fatalf("rejected appends made %d store requests", got)
	}
}

// Group commit: concurrent appends share segments, and every append of many
// writers lands exactly once with dense offsets.
func TestConcurrentAppendsGroupCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := openStore(t, url)
		l := newLog(t, s, nil)
		const writers, each = 16, 25
		var wg sync.WaitGroup
		var mu sync.Mutex
		offsets := map[int64]string{}
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					id := fmt.Sprintf("w%d-%d", w, i)
					res, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(id)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, dup := offsets[res.FirstOffset]; dup {
						t.Errorf("offset %d given to %s and %s", res.FirstOffset, prev, id)
					}
					offsets[res.FirstOffset] = id
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		got := readAll(t, l, "t", 0)
		if len(got) != writers*each {
			t.Fatalf("read %d events, want %d", len(got), writers*each)
		}
		for off, id := range offsets {
			if got[off] != id {
				t.Fatalf("offset %d holds %s, acknowledged as %s", off, got[off], id)
			}
		}
		segs := s.Stats()[objectlog.OpPutIfAbsnt][objectlog.ResultOK]
		t.Logf("%d appends committed with %d create-if-absent writes (segments + entries + checkpoints)", writers*each, segs)
		if segs >= int64(2*writers*each) {
			t.Fatalf("no group commit: %d conditional writes for %d appends", segs, writers*each)
		}
	})
}

// Several Logs (as several processes would) race on one partition.
func TestRacingWritersOnePartition(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		shared := openStore(t, url)
		const logs, each = 4, 40
		var all []*objectlog.Log
		for i := 0; i < logs; i++ {
			s := shared
			if url != "mem://" {
				s = openStore(t, url)
			}
			all = append(all, newLog(t, s, func(c *objectlog.Config) { c.WriterID = fmt.Sprint("writer", i) }))
		}
		var wg sync.WaitGroup
		acked := make(chan string, logs*each)
		for i, l := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each; j++ {
					id := fmt.Sprintf("l%d-%d", i, j)
					if _, err := l.Append(ctx, "race", 0, []objectlog.Record{rec(id)}); err != nil {
						t.Error(err)
						return
					}
					acked <- id
				}
			}()
		}
		wg.Wait()
		close(acked)
		got := readAll(t, all[0], "race", 0)
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
		}
		n := 0
		for id := range acked {
			n++
			if seen[id] != 1 {
				t.Errorf("acknowledged %s appears %d times", id, seen[id])
			}
		}
		if len(got) != n {
			t.Fatalf("log holds %d events, %d were acknowledged", len(got), n)
		}
	})
}

// A crash between the segment PUT and the manifest commit leaves nothing
// visible: the segment is an orphan no reader sees.
func TestNoHalfVisibleCommit(t *testing.T) {
	ctx := context.Background()
	var failCommits bool
	var mu sync.Mutex
	fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		mu.Lock()
		defer mu.Unlock()
		if failCommits && op == objectlog.OpPutIfAbsnt && strings.Contains(key, "/manifest/") {
			return errors.New("injected crash before commit")
		}
		return nil
	}})
	s := objectlog.NewStore(fd, objectlog.RetryPolicy{MaxAttempts: 1})
	l := newLog(t, s, nil)
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("before")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	failCommits = true
	mu.Unlock()
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("lost")}); err == nil {
		t.Fatal("append acknowledged although its commit failed")
	}
	mu.Lock()
	failCommits = false
	mu.Unlock()
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("after")}); err != nil {
		t.Fatal(err)
	}
	l2 := newLog(t, s, nil)
	if got := strings.Join(readAll(t, l2, "t", 0), ","); got != "before,after" {
		t.Fatalf("readers see %q, want before,after", got)
	}
	var segs int
	_ = s.ListAll(ctx, "log/t/0/seg/", func(objectlog.ObjectInfo) error { segs++; return nil })
	if segs != 3 {
		t.Fatalf("want 3 segments (one orphan), found %d", segs)
	}
}

// On a store that throttles, conflicts and loses acknowledgements, every
// acknowledged append is in the log exactly once and nothing is duplicated.
func TestAppendsOnFaultyStore(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ctx := context.Background()
			fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{
				Seed: seed, SlowDown: 0.1, Conflict: 0.1, LostAck: 0.15, Jitter: 200 * time.Microsecond,
			})
			s := objectlog.NewStore(fd, objectlog.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond})
			var logs []*objectlog.Log
			for i := 0; i < 3; i++ {
				logs = append(logs, newLog(t, s, nil))
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			acked := map[string]bool{}
			failed := 0
			for w := 0; w < 12; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						id := fmt.Sprintf("w%d-%d", w, i)
						_, err := logs[w%3].Append(ctx, "t", 0, []objectlog.Record{rec(id)})
						mu.Lock()
						if err == nil {
							acked[id] = true
						} else {
							failed++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			clean := newLog(t, objectlog.NewStore(fd.Unwrap(), objectlog.DefaultRetryPolicy), nil)
			got := readAll(t, clean, "t", 0)
			seen := map[string]int{}
			for _, id := range got {
				seen[id]++
				if seen[id] > 1 {
					t.Errorf("%s appears twice", id)
				}
			}
			for id := range acked {
				if seen[id] != 1 {
					t.Errorf("acknowledged %s appears %d times", id, seen[id])
				}
			}
			t.Logf("%d faults injected; %d acked, %d failed, %d in the log", fd.Injected(), len(acked), failed, len(got))
			if fd.Injected() == 0 || len(acked) == 0 {
				t.Fatal("the test exercised nothing")
			}
		})
	}
}

func TestChecksumMismatchDetected(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	l := newLog(t, s, nil)
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("a"), rec("b")}); err != nil {
		t.Fatal(err)
	}
	var seg string
	_ = s.ListAll(ctx, "log/t/0/seg/", func(o objectlog.ObjectInfo) error { seg = o.Key; return nil })
	data, _, err := s.Get(ctx, seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if _, err := s.Put(ctx, seg, data); err != nil {
		t.Fatal(err)
	}
	r, _ := l.NewReader("t", 0)
	if _, err := r.Next(ctx); !errors.Is(err, objectlog.ErrChecksum) {
		t.Fatalf("corrupt segment read as %v, want ErrChecksum", err)
	}
}

func TestSeekOffsetAndTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := openStore(t, url)
		l := newLog(t, s, nil)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// 300 single-event entries (over two checkpoint spans) with times a minute apart.
		const n = 300
		for i := 0; i < n; i++ {
			r := rec(fmt.Sprint(i))
			r.Time = base.Add(time.Duration(i) * time.Minute)
			if _, err := l.Append(ctx, "t", 0, []objectlog.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
		l.Close() // waits for background checkpoint writes
		l = newLog(t, s, nil)
		var ckpts int
		_ = s.ListAll(ctx, "log/t/0/checkpoint/", func(objectlog.ObjectInfo) error { ckpts++; return nil })
		if ckpts != n/objectlog.CheckpointSpan {
			t.Fatalf("%d checkpoints, want %d", ckpts, n/objectlog.CheckpointSpan)
		}
		for _, off := range []int64{0, 1, 127, 128, 200, 255, 256, 299} {
			r, _ := l.NewReader("t", 0)
			if err := r.SeekOffset(ctx, off); err != nil {
				t.Fatal(err)
			}
			ev, err := r.Next(ctx)
			if err != nil || ev.Offset != off || idOf(t, ev.Data) != fmt.Sprint(off) {
				t.Fatalf("seek %d: got offset %d (%v)", off, ev.Offset, err)
			}
		}
		r, _ := l.NewReader("t", 0)
		if err := r.SeekOffset(ctx, n+5); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("seek past the tail: %v, want io.EOF", err)
		}
		for _, min := range []int{0, 100, 128, 250, 299} {
			r, _ := l.NewReader("t", 0)
			if err := r.SeekTime(ctx, base.Add(time.Duration(min)*time.Minute-time.Second)); err != nil {
				t.Fatal(err)
			}
			ev, err := r.Next(ctx)
			if err != nil || ev.Offset != int64(min) {
				t.Fatalf("seek to minute %d: got offset %d (%v)", min, ev.Offset, err)
			}
		}
		r, _ = l.NewReader("t", 0)
		if err := r.SeekTime(ctx, base.Add(time.Hour*24)); err != nil {
			t.Fatal(err)
		}
		if r.Offset() != n {
			t.Fatalf("seek after the newest event: at offset %d, want %d", r.Offset(), n)
		}
	})
}

func TestFollowWakesOnCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := openStore(t, "file://"+t.TempDir())
	// Polls an hour apart: only the local commit signal can wake the reader in time.
	l := newLog(t, s, func(c *objectlog.Config) { c.PollMin, c.PollMax = time.Hour, time.Hour })
	r, _ := l.NewReader("t", 0)
	if err := r.SeekLatest(ctx); err != nil {
		t.Fatal(err)
	}
	r.Follow(true)
	got := make(chan string, 1)
	go func() {
		ev, err := r.Next(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- idOf(t, ev.Data)
	}()
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("x")}); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != "x" {
		t.Fatalf("follower got %q", id)
	}
}

// A topic deleted and created again (its log data gone) must not be
// appended to from a writer's stale position: after Forget the writer
// starts at the new tail, and readers see the event.
func TestForgetAfterTopicRecreated(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	l := newLog(t, s, nil)
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint("old", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := objectlog.DeleteTopicData(ctx, s, "", "t"); err != nil {
		t.Fatal(err)
	}
	l.Forget("t")
	res, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("new")})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstOffset != 0 {
		t.Fatalf("append after re-creation at offset %d, want 0", res.FirstOffset)
	}
	if got := readAll(t, newLog(t, s, nil), "t", 0); len(got) != 1 || got[0] != "new" {
		t.Fatalf("readers see %v, want [new]", got)
	}
}
