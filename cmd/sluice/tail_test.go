package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait for output; reaching it fails the test.
const waitTimeout = 30 * time.Second

// syncBuffer is an output a running command writes while the test reads
// it; every write wakes a waiter.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until ok holds for the buffer's contents.
func (s *syncBuffer) waitFor(t *testing.T, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for !ok(s.String()) {
		select {
		case <-s.written:
		case <-deadline:
			t.Fatalf("waited %v for %s; got:\n%s", waitTimeout, what, s.String())
		}
	}
}

// background is a command running in a goroutine.
type background struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

func runBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{stdout: newSyncBuffer(), stderr: newSyncBuffer(), cancel: cancel, done: make(chan error, 1)}
	root := newRootCmd(b.stdout, b.stderr)
	root.SetArgs(args)
	go func() { b.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// wait returns the command's error once it has ended.
func (b *background) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("command still running after %v; stdout:\n%s\nstderr:\n%s", waitTimeout, b.stdout.String(), b.stderr.String())
		return nil
	}
}

func lineCount(n int) func(string) bool {
	return func(s string) bool { return strings.Count(s, "\n") >= n }
}

func TestTailFollowFromLatestWithCount(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders", "--partitions", "4")
	s.mustAdmin(t, "publish", "orders", `{"old":true}`)

	tail := runBackground(t, "tail", "orders", "--store", s.store, "--from", "latest", "-f", "-n", "2", "-o", "json")
	// Every partition is positioned at its tail once this is printed.
	tail.stderr.waitFor(t, "tail to start following", func(s string) bool { return strings.Contains(s, "following orders") })
	s.mustAdmin(t, "publish", "orders", `{"new":1}`)
	s.mustAdmin(t, "publish", "orders", `{"new":2}`, `{"new":3}`)

	if err := tail.wait(t); err != nil {
		t.Fatalf("tail -n 2: %v\nstderr:\n%s", err, tail.stderr.String())
	}
	events := jsonLines(t, tail.stdout.String())
	if len(events) != 2 {
		t.Fatalf("tail -n 2 printed %d events:\n%s", len(events), tail.stdout.String())
	}
	for _, e := range events {
		if _, ok := e["data"].(map[string]any)["new"]; !ok {
			t.Errorf("tail --from latest printed an event published before it started: %v", e)
		}
	}
}

func TestTailFollowUntilCancelled(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders", "--partitions", "2")
	s.mustAdmin(t, "publish", "orders", `{"n":1}`)

	tail := runBackground(t, "tail", "orders", "--store", s.store, "-f")
	// From earliest by default: the table shows the event already there.
	tail.stdout.waitFor(t, "the header and the first event", lineCount(2))
	s.mustAdmin(t, "publish", "orders", `{"n":2}`)
	tail.stdout.waitFor(t, "the second event", lineCount(3))

	tail.cancel()
	if err := tail.wait(t); err != nil {
		t.Fatalf("tail -f ended with %v after cancel", err)
	}
	out := tail.stdout.String()
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "PARTITION") {
		t.Fatalf("tail -f table:\n%s", out)
	}
	mustContain(t, "table", out, cliType, cliSource)
}

func TestTailFromTimeAndCount(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders", "--partitions", "1")
	s.mustAdmin(t, "publish", "orders", `1`, `2`, `3`)

	r := runCLI(t, "tail", "orders", "--store", s.store, "-n", "2", "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if events := jsonLines(t, r.stdout); len(events) != 2 || events[0]["data"] != 1.0 || events[1]["data"] != 2.0 {
		t.Errorf("tail -n 2: %s", r.stdout)
	}

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r = runCLI(t, "tail", "orders", "--store", s.store, "--from", future, "-o", "json")
	if r.err != nil || r.stdout != "" {
		t.Errorf("tail --from an hour ahead: err %v, stdout %q", r.err, r.stdout)
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r = runCLI(t, "tail", "orders", "--store", s.store, "--from", past, "-o", "json")
	if r.err != nil || len(jsonLines(t, r.stdout)) != 3 {
		t.Errorf("tail --from an hour ago: err %v, stdout %q", r.err, r.stdout)
	}
}

func TestTailErrors(t *testing.T) {
	s := newSluiceServer(t)
	r := runCLI(t, "tail", "nosuchtopic", "--store", s.store)
	if r.err == nil {
		t.Fatal("no error for an unknown topic")
	}
	mustContain(t, "error", r.err.Error(), `topic "nosuchtopic" does not exist in store`)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "yesterday"}, `--from "yesterday": want earliest, latest or an RFC 3339 time`},
		{[]string{"-n", "-1"}, "-n/--count -1"},
		{[]string{"-o", "yaml"}, `-o/--output "yaml"`},
	} {
		r := runCLI(t, append([]string{"tail", "orders", "--store", s.store}, tc.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("tail %v: error %v, want one containing %q", tc.args, r.err, tc.want)
		}
	}
}

func TestTailStoreFromEnv(t *testing.T) {
	var cfg tailConfig
	cfg.resolve(func(k string) string { return map[string]string{envStore: "mem://x"}[k] })
	if cfg.Store != "mem://x" {
		t.Errorf("store from $%s: %q", envStore, cfg.Store)
	}
	cfg = tailConfig{}
	cfg.resolve(func(string) string { return "" })
	if cfg.Store != defaultStore {
		t.Errorf("default store: %q", cfg.Store)
	}
}
