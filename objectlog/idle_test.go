package objectlog_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// idleConfig makes partitions go idle quickly: quiet for 200 ms, then one
// read of log/wake.json every 50 ms for all of them.
func idleConfig(c *objectlog.Config) {
	c.PollMin, c.PollMax = time.Millisecond, 20*time.Millisecond
	c.IdleAfter, c.WakePoll = 200*time.Millisecond, 50*time.Millisecond
}

// follow starts a follower of a partition from its tail; its events arrive
// on the returned channel (an error as "error: …").
func follow(t *testing.T, ctx context.Context, l *objectlog.Log, topic string, p int) <-chan string {
	t.Helper()
	r, err := l.NewReader(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SeekLatest(ctx); err != nil {
		t.Fatal(err)
	}
	r.Follow(true)
	out := make(chan string, 100)
	go func() {
		defer close(out)
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					out <- "error: " + err.Error()
				}
				return
			}
			out <- idFromData(ev.Data)
		}
	}()
	return out
}

func expectEvent(t *testing.T, ch <-chan string, want string, timeout time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("follower got %q, want %q", got, want)
		}
	case <-time.After(timeout):
		t.Fatalf("follower did not get %q within %v", want, timeout)
	}
}

// An idle deployment costs one read of log/wake.json per WakePoll, however
// many partitions (and readers of each) it follows.
func TestIdlePartitionsCostOneWakeRead(t *testing.T) {
	s := openStore(t, "mem://")
	l := newLog(t, s, idleConfig)
	ctx, cancel := context.WithCancel(context.Background())
	const parts = 8
	var chans []<-chan string
	for p := 0; p < parts; p++ {
		for i := 0; i < 2; i++ {
			chans = append(chans, follow(t, ctx, l, "t", p))
		}
	}
	waitFor(t, 10*time.Second, "every partition is idle", func() bool {
		_, idle, waiters, _ := objectlog.FollowState(l)
		return idle == parts && waiters == 2*parts
	})
	base := s.Stats()
	time.Sleep(time.Second) // the measurement window
	d := s.Stats().Sub(base)
	t.Logf("1 s of %d idle partitions with 2 followers each: %s", parts, d)
	// Polling each partition every PollMax would cost 8 × 50 = 400 GETs.
	if d.Total() > 30 || d.Total(objectlog.OpGet) > 1 {
		t.Fatalf("idle partitions cost %s in 1 s; want about one stat per 50 ms wake poll", d)
	}
	if d.Total(objectlog.OpStat) < 10 {
		t.Fatalf("the wake watcher read log/wake.json only %d times in 1 s at a 50 ms poll", d.Total(objectlog.OpStat))
	}
	cancel()
	for _, ch := range chans {
		for range ch {
		}
	}
	waitFor(t, 10*time.Second, "the watches and the wake watcher stop", func() bool {
		watches, _, _, wake := objectlog.FollowState(l)
		return watches == 0 && !wake
	})
}

// A commit through another Log (another process) wakes an idle follower:
// the writer rewrote log/wake.json first.
func TestIdleFollowerWokenByAnotherWriter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := openStore(t, url)
		l := newLog(t, s, idleConfig)
		other := newLog(t, s, idleConfig)
		if url != "mem://" {
			other = newLog(t, openStore(t, url), idleConfig)
		}
		// A busy partition must not keep the idle one awake, nor the reverse.
		if _, err := other.Append(ctx, "t", 1, []objectlog.Record{rec("warm-up")}); err != nil {
			t.Fatal(err)
		}
		ch := follow(t, ctx, l, "t", 0)
		waitFor(t, 20*time.Second, "the follower is idle", func() bool {
			_, idle, _, _ := objectlog.FollowState(l)
			return idle == 1
		})
		for i := 0; i < 2; i++ {
			id := fmt.Sprint("wake-", i)
			if _, err := other.Append(ctx, "t", 0, []objectlog.Record{rec(id)}); err != nil {
				t.Fatal(err)
			}
			// Without the wake-up the follower would look again only after 5 minutes.
			expectEvent(t, ch, id, 30*time.Second)
			waitFor(t, 20*time.Second, "the follower is idle again", func() bool {
				_, idle, _, _ := objectlog.FollowState(l)
				return idle == 1
			})
		}
	})
}

// A writer that commits every 0.4×IdleAfter writes log/wake.json only
// before the first commit: each later commit follows its previous one by
// less than IdleAfter/2, and the follower, having found that one, is still
// polling. The follower gets every event.
func TestIdleFollowerFollowsAChainOfCommits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := openStore(t, url)
		l := newLog(t, s, idleConfig)
		other := newLog(t, s, idleConfig)
		if url != "mem://" {
			other = newLog(t, openStore(t, url), idleConfig)
		}
		ch := follow(t, ctx, l, "t", 0)
		waitFor(t, 20*time.Second, "the follower is idle", func() bool {
			_, idle, _, _ := objectlog.FollowState(l)
			return idle == 1
		})
		const rounds = 8
		base := other.Store().Stats()
		errs := make(chan error, 1)
		go func() {
			tick := time.NewTicker(80 * time.Millisecond) // 0.4 × IdleAfter
			defer tick.Stop()
			for i := 0; i < rounds; i++ {
				if _, err := other.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint("chain-", i))}); err != nil {
					errs <- err
					return
				}
				<-tick.C
			}
			errs <- nil
		}()
		for i := 0; i < rounds; i++ {
			expectEvent(t, ch, fmt.Sprint("chain-", i), 30*time.Second)
		}
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		puts := other.Store().Stats().Sub(base).Total(objectlog.OpPut)
		t.Logf("%d commits 80 ms apart: %d unconditional PUTs (wake writes)", rounds, puts)
		// (MinIO's commits may take long enough to need a wake write after them.)
		if !strings.HasPrefix(url, "s3:") && puts >= rounds {
			t.Fatalf("%d commits 80 ms apart wrote log/wake.json %d times; only the first needs to", rounds, puts)
		}
	})
}

// The wake write goes before the manifest entry, only when the partition's
// writer has not committed for IdleAfter/2, and again after a commit that
// ended more than IdleAfter/2 after it.
func TestWakeWrites(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var trace []string
	slowSegments := false
	fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case op == objectlog.OpPut && key == "log/wake.json":
			trace = append(trace, "wake")
		case op == objectlog.OpPutIfAbsnt && strings.Contains(key, "/manifest/"):
			trace = append(trace, "entry")
		case op == objectlog.OpPutIfAbsnt && strings.Contains(key, "/seg/"):
			if slowSegments {
				mu.Unlock()
				time.Sleep(60 * time.Millisecond) // a slow store: the commit ends IdleAfter/2 after the wake write
				mu.Lock()
			}
		}
		return nil
	}})
	s := objectlog.NewStore(fd, objectlog.DefaultRetryPolicy)
	traced := func() string {
		mu.Lock()
		defer mu.Unlock()
		out := strings.Join(trace, " ")
		trace = nil
		return out
	}

	l := newLog(t, s, func(c *objectlog.Config) { c.IdleAfter = time.Hour })
	for i := 0; i < 4; i++ {
		if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if got := traced(); got != "wake entry entry entry entry" {
		t.Fatalf("four quick commits: %q, want a wake write before the first entry only", got)
	}
	if _, err := l.Append(ctx, "t", 1, []objectlog.Record{rec("other")}); err != nil {
		t.Fatal(err)
	}
	if got := traced(); got != "wake entry" {
		t.Fatalf("first commit to another partition: %q, want a wake write first", got)
	}

	l = newLog(t, s, func(c *objectlog.Config) { c.IdleAfter = 80 * time.Millisecond })
	mu.Lock()
	slowSegments = true
	mu.Unlock()
	if _, err := l.Append(ctx, "t", 2, []objectlog.Record{rec("slow")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the second wake write", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(trace) >= 3
	})
	if got := traced(); got != "wake entry wake" {
		t.Fatalf("a slow commit: %q, want a wake write before and after the entry", got)
	}
}

// A failed wake write does not fail the append; it is counted.
func TestWakeWriteFailureIsNotAnAppendFailure(t *testing.T) {
	ctx := context.Background()
	fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		if key == "log/wake.json" {
			return errors.New("injected: wake write refused")
		}
		return nil
	}})
	l := newLog(t, objectlog.NewStore(fd, objectlog.RetryPolicy{MaxAttempts: 1}), nil)
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("a")}); err != nil {
		t.Fatalf("append failed with its wake write: %v", err)
	}
	// Once before the commit, and once after it: it was not covered.
	waitFor(t, 10*time.Second, "both failed wake writes are counted", func() bool { return l.WakeFailures() == 2 })
	if got := readAll(t, l, "t", 0); len(got) != 1 {
		t.Fatalf("log holds %v", got)
	}
}

// log/wake.json is the log's own: no topic can be named so that its keys
// meet it, and deleting a topic's data leaves it alone.
func TestWakeObjectIsNotATopic(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	l := newLog(t, s, nil)
	for _, topic := range []string{"wake.json", "a.b"} {
		if _, err := l.Append(ctx, topic, 0, []objectlog.Record{rec("x")}); !errors.Is(err, objectlog.ErrInvalidKey) {
			t.Errorf("append to topic %q: %v, want ErrInvalidKey", topic, err)
		}
	}
	if _, err := l.Append(ctx, "t", 0, []objectlog.Record{rec("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := objectlog.DeleteTopicData(ctx, s, "", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "log/wake.json"); err != nil {
		t.Fatalf("log/wake.json after deleting topic t: %v", err)
	}
	if rep, err := l.NewJanitor(nil).Collect(ctx, "t", 0, time.Hour); err != nil {
		t.Fatalf("janitor beside log/wake.json: %v (%v)", err, rep)
	}
}

func TestIdleConfig(t *testing.T) {
	for _, c := range []objectlog.Config{objectlog.LowLatency, objectlog.LowCost} {
		if c.IdleAfter != 5*time.Second || c.WakePoll != time.Second || c.ReadCacheBytes != 64<<20 {
			t.Errorf("defaults: idle after %v, wake poll %v, read cache %d", c.IdleAfter, c.WakePoll, c.ReadCacheBytes)
		}
	}
	c := objectlog.DefaultConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-idle-after=30s", "-wake-poll=2s", "-read-cache-bytes=1024"}); err != nil {
		t.Fatal(err)
	}
	if c.IdleAfter != 30*time.Second || c.WakePoll != 2*time.Second || c.ReadCacheBytes != 1024 {
		t.Fatalf("flags gave %+v", c)
	}
	for name, mod := range map[string]func(*objectlog.Config){
		"idle after 0":   func(c *objectlog.Config) { c.IdleAfter = 0 },
		"wake poll -1s":  func(c *objectlog.Config) { c.WakePoll = -time.Second },
		"wake poll zero": func(c *objectlog.Config) { c.WakePoll = 0 },
	} {
		c := objectlog.DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
