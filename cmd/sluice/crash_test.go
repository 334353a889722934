package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/miniotest"
)

// Publishers under load while `sluice serve` is killed with SIGKILL at
// random instants, many times, and finally stopped with SIGTERM: every event
// that got a 200 is in the log afterwards, once, and the log reads back whole.
func TestIngestSurvivesKill9(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
		{"minio", func(t *testing.T) string { return miniotest.Bucket(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			store := b.url(t)
			env := []string{"SLUICE_TOKEN=crash-test-token"}
			rng := rand.New(rand.NewSource(time.Now().UnixNano()))
			var acked []string
			var key string
			const cycles = 6
			for cycle := 0; cycle < cycles; cycle++ {
				s := startServe(t, env, "--store", store, "--roles", "ingest,api")
				if cycle == 0 {
					if code, body := s.do(t, "PUT", "/api/topics/crash", "crash-test-token", `{"name":"crash","properties":{"partitions":2}}`); code != 201 {
						t.Fatalf("create topic: %d %s", code, body)
					}
					code, body := s.do(t, "POST", "/api/topics/crash/listKeys", "crash-test-token", "")
					var k struct{ Key1 string }
					if code != 200 || json.Unmarshal([]byte(body), &k) != nil {
						t.Fatalf("keys: %d %s", code, body)
					}
					key = k.Key1
				}
				sig := syscall.SIGKILL
				if cycle == cycles-1 {
					sig = syscall.SIGTERM // the last stop is graceful, under the same load
				}
				got := publishUntilStopped(t, s, key, cycle, time.Duration(200+rng.Intn(400))*time.Millisecond, sig)
				acked = append(acked, got...)
			}
			if len(acked) == 0 {
				t.Fatal("no publish was acknowledged: the test exercised nothing")
			}
			stored := tailAll(t, store, "crash")
			seen := map[string]int{}
			for _, id := range stored {
				seen[id]++
			}
			for _, id := range acked {
				if seen[id] != 1 {
					t.Errorf("acknowledged event %s is in the log %d times", id, seen[id])
				}
			}
			t.Logf("%d kill -9 cycles: %d events acknowledged, %d in the log", cycles, len(acked), len(stored))
		})
	}
}

// publishUntilStopped runs 8 publishers against s, sends s sig after d, and
// returns the ids of events whose request got a 200. After SIGTERM the
// server must exit 0 (it drains in-flight publishes, acknowledging only
// what it committed).
func publishUntilStopped(t *testing.T, s *server, key string, cycle int, d time.Duration, sig syscall.Signal) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 100000; i++ {
				ids := []string{fmt.Sprintf("c%d-g%d-%d-a", cycle, g, i), fmt.Sprintf("c%d-g%d-%d-b", cycle, g, i)}
				var evs []string
				for _, id := range ids {
					evs = append(evs, fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/crash","type":"t"}`, id))
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/topics/crash/api/events", strings.NewReader("["+strings.Join(evs, ",")+"]"))
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				req.Header.Set("aeg-sas-key", key)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(d) // the kill lands at a random point of a steady publish stream
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := <-s.done
	if sig == syscall.SIGTERM && err != nil {
		t.Errorf("graceful stop under load: %v, want exit 0\n%s", err, s.output())
	}
	cancel()
	wg.Wait()
	return acked
}

// tailAll reads a topic back with `sluice tail -o json`, as a user would:
// one CloudEvent per line.
func tailAll(t *testing.T, store, topic string) []string {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), "tail", topic, "--store", store, "--from", "earliest", "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice tail: %v\n%s", err, stderr.String())
	}
	var ids []string
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var ev struct{ ID string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.ID == "" {
			t.Fatalf("tail line %d is not a CloudEvent: %q", i+1, line)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}
