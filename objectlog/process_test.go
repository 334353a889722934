package objectlog_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// TestHelperAppender is not a test: it is the body of a child process the
// multi-process tests start (go's os/exec helper-process pattern). It appends
// ids "<writer>-<n>" with several goroutines and prints "ACK <id>" for each
// acknowledged one, until it has appended SLUICE_CHILD_COUNT or is killed.
func TestHelperAppender(t *testing.T) {
	if os.Getenv("SLUICE_CHILD") != "appender" {
		return
	}
	url, writer := os.Getenv("SLUICE_CHILD_URL"), os.Getenv("SLUICE_CHILD_WRITER")
	count, _ := strconv.Atoi(os.Getenv("SLUICE_CHILD_COUNT"))
	ctx := context.Background()
	s, err := objectlog.Open(ctx, url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := objectlog.NewLog(s, objectlog.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var next int
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= count {
					mu.Unlock()
					return
				}
				n := 1 + next%3 // batches of 1-3 records
				ids := make([]string, 0, n)
				recs := make([]objectlog.Record, 0, n)
				for i := 0; i < n; i++ {
					id := fmt.Sprintf("%s-%d", writer, next)
					next++
					ids = append(ids, id)
					recs = append(recs, rec(id))
				}
				mu.Unlock()
				if _, err := l.Append(ctx, "crash", 0, recs); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					continue
				}
				mu.Lock()
				for _, id := range ids {
					fmt.Fprintf(out, "ACK %s\n", id)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	l.Close()
	os.Exit(0)
}

// child is a running appender process and the ids it acknowledged.
type child struct {
	cmd   *exec.Cmd
	acks  chan string
	done  chan struct{}
	mu    sync.Mutex
	acked []string
}

func startAppender(t *testing.T, url, writer string, count int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SLUICE_CHILD=appender", "SLUICE_CHILD_URL="+url,
		"SLUICE_CHILD_WRITER="+writer, "SLUICE_CHILD_COUNT="+strconv.Itoa(count))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, acks: make(chan string, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				c.mu.Lock()
				c.acked = append(c.acked, id)
				c.mu.Unlock()
				select {
				case c.acks <- id:
				default:
				}
			}
		}
	}()
	return c
}

// wait reaps the child and returns every id it acknowledged.
func (c *child) wait() []string {
	<-c.done
	_ = c.cmd.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// checkLog reads the partition (dense offsets, verified checksums) and checks
// that every acknowledged id is there exactly once and no id is there twice.
func checkLog(t *testing.T, url string, acked []string) int {
	t.Helper()
	l := newLog(t, openStore(t, url), nil)
	got := readAll(t, l, "crash", 0)
	seen := make(map[string]int, len(got))
	for _, id := range got {
		seen[id]++
		if seen[id] == 2 {
			t.Errorf("%s is in the log twice", id)
		}
	}
	missing := 0
	for _, id := range acked {
		if seen[id] != 1 {
			missing++
			if missing < 10 {
				t.Errorf("acknowledged %s is in the log %d times", id, seen[id])
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are missing", missing, len(acked))
	}
	return len(got)
}

// Writers killed with SIGKILL at random instants lose no acknowledged event,
// leave the log readable, and the next writer continues it.
func TestKill9Writer(t *testing.T) {
	for _, b := range logBackends {
		if b.name == "mem" {
			t.Run(b.name, func(t *testing.T) { t.Log("memory is private to a process: nothing survives a kill to check") })
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			rng := rand.New(rand.NewSource(time.Now().UnixNano()))
			var acked []string
			const cycles = 10
			for cycle := 0; cycle < cycles; cycle++ {
				c := startAppender(t, url, fmt.Sprintf("c%d", cycle), 1<<30)
				// Let it get going, then kill it at a random instant mid-stream.
				for i := 0; i < 20; i++ {
					select {
					case <-c.acks:
					case <-time.After(30 * time.Second):
						t.Fatal("appender acknowledged nothing in 30s")
					}
				}
				time.Sleep(time.Duration(rng.Intn(100)) * time.Millisecond)
				if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, c.wait()...)
			}
			n := checkLog(t, url, acked)
			t.Logf("%d kill -9 cycles: %d events acknowledged, %d in the log (the rest were in flight)", cycles, len(acked), n)
		})
	}
}

// Two processes appending to one partition at once: no append lost, none
// duplicated, offsets dense.
func TestTwoProcessesOnePartition(t *testing.T) {
	for _, b := range logBackends {
		if b.name == "mem" {
			t.Run(b.name, func(t *testing.T) {
				t.Log("memory is private to a process: covered by TestRacingWritersOnePartition/mem")
			})
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			const each = 300
			a, c := startAppender(t, url, "a", each), startAppender(t, url, "b", each)
			acked := append(a.wait(), c.wait()...)
			if len(acked) != 2*each {
				t.Fatalf("%d of %d appends acknowledged", len(acked), 2*each)
			}
			if n := checkLog(t, url, acked); n != 2*each {
				t.Fatalf("log holds %d events, want %d", n, 2*each)
			}
		})
	}
}
