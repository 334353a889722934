package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/internal/miniotest"
	"github.com/sluicehq/sluice/objectlog"
)

// clusterReceiver is a webhook endpoint in the test process that records
// every delivered event id with the time it arrived. fail decides which
// requests fail (with 500).
type clusterReceiver struct {
	srv  *httptest.Server
	fail func() bool
	mu   sync.Mutex
	got  map[string][]time.Time
	reqs int
}

func newClusterReceiver(t *testing.T, fail func() bool) *clusterReceiver {
	rc := &clusterReceiver{fail: fail, got: map[string][]time.Time{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions { // CloudEvents abuse protection: any origin
			w.Header().Set("WebHook-Allowed-Origin", "*")
			return
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs++
		rc.mu.Unlock()
		if rc.fail != nil && rc.fail() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ids []string
		var one struct{ ID string }
		var many []struct{ ID string }
		if json.Unmarshal(body, &many) == nil {
			for _, e := range many {
				ids = append(ids, e.ID)
			}
		} else if json.Unmarshal(body, &one) == nil {
			ids = append(ids, one.ID)
		}
		now := time.Now()
		rc.mu.Lock()
		for _, id := range ids {
			rc.got[id] = append(rc.got[id], now)
		}
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *clusterReceiver) snapshot() map[string][]time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string][]time.Time, len(rc.got))
	for k, v := range rc.got {
		out[k] = append([]time.Time(nil), v...)
	}
	return out
}

var workerStarted = regexp.MustCompile(`"worker":"([^"]+)"[^\n]*dispatch: worker started`)

// Two ingest and three dispatch processes share one store. Tens of
// thousands of events go to three subscriptions (one receiver fails 30% of
// requests); one dispatcher is killed with SIGKILL mid-run. Afterwards every
// event reached every subscription or was dead-lettered with a reason, and
// duplicates are bounded by what was in flight around the kill.
func TestDispatchClusterSurvivesKill9(t *testing.T) {
	if testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("-short under CI=true would skip the multi-process crash test CI must run")
		}
		t.Skip("multi-process cluster test")
	}
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
		{"minio", func(t *testing.T) string { return miniotest.Bucket(t) }},
	} {
		t.Run(b.name, func(t *testing.T) { runDispatchCluster(t, b.url(t)) })
	}
}

func runDispatchCluster(t *testing.T, storeURL string) {
	const (
		events     = 20000
		perRequest = 100
		batchSize  = 20
		leaseTTL   = 3 * time.Second
		cursorIntv = 250 * time.Millisecond
	)
	token := "cluster-test-token"
	env := []string{"SLUICE_TOKEN=" + token}
	common := []string{"--store", storeURL, "--watch-every", "300ms"}
	ingests := []*server{
		startServe(t, env, append(common, "--roles", "ingest,api")...),
		startServe(t, env, append(common, "--roles", "ingest")...),
	}
	var dispatchers []*server
	var workerIDs []string
	for i := 0; i < 3; i++ {
		s := startServe(t, env, append(common, "--roles", "dispatch", "--lease-ttl", leaseTTL.String(), "--member-poll", "500ms",
			"--cursor-every", cursorIntv.String(), "--retry-scale", "0.01")...)
		dispatchers = append(dispatchers, s)
		var id string
		waitUntil(t, "worker id in the log", 10*time.Second, func() bool {
			m := workerStarted.FindStringSubmatch(s.output())
			if m != nil {
				id = m[1]
			}
			return m != nil
		})
		workerIDs = append(workerIDs, id)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, d := range dispatchers {
			if f, err := os.CreateTemp("", fmt.Sprintf("sluice-cluster-dispatcher%d-*.log", i)); err == nil {
				_, _ = f.WriteString(d.output())
				_ = f.Close()
				t.Logf("dispatcher %d (%s): its whole log is kept in %s", i, workerIDs[i], f.Name())
			}
		}
	})

	api := ingests[0]
	if code, body := api.do(t, "PUT", "/api/topics/cluster", token, `{"name":"cluster","properties":{"partitions":4}}`); code != 201 {
		t.Fatalf("create topic: %d %s", code, body)
	}
	var flakyMu sync.Mutex
	flakyN := 0
	receivers := map[string]*clusterReceiver{
		"plain":   newClusterReceiver(t, nil),
		"batched": newClusterReceiver(t, nil),
		"flaky": newClusterReceiver(t, func() bool {
			flakyMu.Lock()
			defer flakyMu.Unlock()
			flakyN++
			return flakyN%10 < 3 // 30% of requests fail
		}),
	}
	subBody := map[string]string{
		"plain":   `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":%q}}}}`,
		"batched": `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":%q,"maxEventsPerBatch":` + fmt.Sprint(batchSize) + `}}}}`,
		"flaky":   `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":%q}},"retryPolicy":{"maxDeliveryAttempts":4}}}`,
	}
	for name, body := range subBody {
		if code, out := api.do(t, "PUT", "/api/topics/cluster/eventSubscriptions/"+name, token, fmt.Sprintf(body, receivers[name].srv.URL)); code != 201 {
			t.Fatalf("create subscription %s: %d %s", name, code, out)
		}
	}
	code, body := api.do(t, "POST", "/api/topics/cluster/listKeys", token, "")
	var keys struct{ Key1 string }
	if code != 200 || json.Unmarshal([]byte(body), &keys) != nil {
		t.Fatalf("keys: %d %s", code, body)
	}
	// The dispatchers learn of the subscriptions within --watch-every and
	// spread the 12 units (3 subscriptions × 4 partitions) between them.
	waitUntil(t, "12 units spread over 3 dispatchers", 30*time.Second, func() bool {
		total := 0
		for _, d := range dispatchers {
			n := metricValue(t, d, "sluice_dispatch_units")
			if n < 1 {
				return false
			}
			total += int(n)
		}
		return total == 12
	})

	// Publish through both ingest processes; kill one dispatcher a third of the way in.
	store, err := objectlog.Open(context.Background(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	var acked []string
	var ackMu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	requests := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range requests {
				ids := make([]string, perRequest)
				evs := make([]string, perRequest)
				for i := range ids {
					ids[i] = fmt.Sprintf("e%05d-%03d", r, i)
					evs[i] = fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/cluster","type":"t","partitionkey":"k%d"}`, ids[i], (r*perRequest+i)%97)
				}
				req, _ := http.NewRequest("POST", ingests[r%2].base+"/topics/cluster/api/events", strings.NewReader("["+strings.Join(evs, ",")+"]"))
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				req.Header.Set("aeg-sas-key", keys.Key1)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("publish: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("publish: status %d", resp.StatusCode)
					continue
				}
				ackMu.Lock()
				acked = append(acked, ids...)
				ackMu.Unlock()
			}
		}()
	}
	// victimHolds counts the leases that still name the killed worker.
	victim := 1
	victimHolds := func() int {
		held := 0
		_ = store.ListAll(context.Background(), "work/cluster/", func(o objectlog.ObjectInfo) error {
			if !strings.HasSuffix(o.Key, "/lease.json") {
				return nil
			}
			data, _, err := store.Get(context.Background(), o.Key)
			if err == nil && strings.Contains(string(data), `"holder":"`+workerIDs[victim]+`"`) {
				held++
			}
			return nil
		})
		return held
	}
	var killedAt time.Time
	takeoverCh := make(chan time.Duration, 1)
	for r := 0; r < events/perRequest; r++ {
		requests <- r
		if r == events/perRequest/3 {
			waitUntil(t, "deliveries under way", 60*time.Second, func() bool { return len(receivers["plain"].snapshot()) > 2000 })
			if victimHolds() == 0 {
				t.Fatal("the victim holds no units: the kill would test nothing")
			}
			if err := dispatchers[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = time.Now()
			<-dispatchers[victim].done
			// Takeover: no lease names the killed worker any more.
			go func() {
				for time.Since(killedAt) < time.Minute {
					if victimHolds() == 0 {
						takeoverCh <- time.Since(killedAt)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				takeoverCh <- -1
			}()
		}
	}
	close(requests)
	wg.Wait()
	if len(acked) != events {
		t.Fatalf("%d of %d events acknowledged", len(acked), events)
	}
	takeover := <-takeoverCh
	if takeover < 0 {
		t.Fatal("the killed worker's units were not taken over within a minute")
	}

	// Everything delivered or dead-lettered.
	deadLettered := func(sub string) map[string]string {
		out := map[string]string{}
		_ = dispatch.ListDeadLetters(context.Background(), store, "cluster", sub, func(_ string, recs []json.RawMessage) error {
			for _, r := range recs {
				var m struct {
					ID     string `json:"id"`
					Reason string `json:"deadLetterReason"`
				}
				if json.Unmarshal(r, &m) == nil {
					out[m.ID] = m.Reason
				}
			}
			return nil
		})
		return out
	}
	for name, rc := range receivers {
		var missing []string
		deadline := time.Now().Add(240 * time.Second) // generous: make test runs every package at once
		for {
			got := rc.snapshot()
			dl := deadLettered(name)
			missing = missing[:0]
			for _, id := range acked {
				if len(got[id]) == 0 && dl[id] == "" {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				retries := 0
				_ = store.ListAll(context.Background(), "work/cluster/"+name+"/", func(o objectlog.ObjectInfo) error {
					if strings.Contains(o.Key, "/retry/") {
						retries++
					}
					return nil
				})
				var leases []string
				_ = store.ListAll(context.Background(), "work/cluster/"+name+"/", func(o objectlog.ObjectInfo) error {
					if strings.HasSuffix(o.Key, "lease.json") {
						data, _, _ := store.Get(context.Background(), o.Key)
						leases = append(leases, string(data))
					}
					return nil
				})
				// Where the workers wait: SIGQUIT makes a Go process print
				// every goroutine's stack (on stderr, which the test keeps).
				for i, d := range dispatchers {
					if i == victim || d.cmd.ProcessState != nil {
						continue
					}
					_ = d.cmd.Process.Signal(syscall.SIGQUIT)
					select {
					case <-d.done:
					case <-time.After(10 * time.Second):
					}
					t.Logf("dispatcher %s goroutines (sluice frames):\n%s", workerIDs[i], sluiceFrames(d.output()))
				}
				t.Fatalf("%s: %d events neither delivered nor dead-lettered after 4 minutes (first: %v); %d objects in its retry areas; leases:\n%s\ndispatcher logs:\n%s\n%s",
					name, len(missing), missing[:min(5, len(missing))], retries, strings.Join(leases, "\n"),
					lastLines(dispatchers[0].output(), 30), lastLines(dispatchers[2].output(), 30))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var starved []string // takeovers of workers that were not killed
	for i, d := range dispatchers {
		if i == victim {
			continue
		}
		for _, line := range strings.Split(d.output(), "\n") {
			if strings.Contains(line, "took over a unit whose holder stopped beating") && !strings.Contains(line, `"from":"`+workerIDs[victim]+`"`) {
				starved = append(starved, line)
			}
		}
	}
	for name, rc := range receivers {
		got := rc.snapshot()
		dl := deadLettered(name)
		// Duplicates come from the kill: deliveries the victim made after its
		// last cursor write, and retries it had rescheduled but not yet
		// removed (both copies are then delivered after the kill, within the
		// retry schedule: at --retry-scale 0.01 and 4 attempts, about 1 s).
		settled := killedAt.Add(takeover + 2*time.Second)
		dups, dupsLate := 0, 0
		for _, id := range acked {
			ts := got[id]
			if len(ts) > 1 {
				dups += len(ts) - 1
				if ts[0].After(settled) {
					dupsLate++
				}
			}
			if r := dl[id]; r != "" && r != dispatch.ReasonMaxDeliveryAttempts {
				t.Errorf("%s: event %s dead-lettered with reason %q", name, id, r)
			}
		}
		// What a crash may repeat: deliveries since the victim's last cursor
		// write (at most --cursor-every of them) and its requests in flight.
		window := 0
		for _, ts := range got {
			if ts[0].After(killedAt.Add(-cursorIntv-time.Second)) && ts[0].Before(killedAt) {
				window++
			}
		}
		bound := window + 4*16*batchSize
		t.Logf("%s: %d events delivered, %d dead-lettered, %d duplicates (bound %d), %d requests", name, len(got), len(dl), dups, bound, rc.reqs)
		if dups > bound {
			t.Errorf("%s: %d duplicates, bound %d", name, dups, bound)
		}
		// Later duplicates need a later takeover: a live worker starved of
		// CPU for a whole lease TTL (heavy load) is taken over like a dead
		// one, and repeats what it delivered since its last cursor write.
		if dupsLate > 0 && len(starved) == 0 {
			t.Errorf("%s: %d duplicates first delivered after the takeover settled, with no other takeover to explain them", name, dupsLate)
		} else if dupsLate > 0 {
			t.Logf("%s: %d duplicates after other takeovers of live workers (starved by load):\n%s", name, dupsLate, strings.Join(starved, "\n"))
		}
		if name != "flaky" && len(dl) > 0 {
			t.Errorf("%s: %d dead letters from a receiver that never fails", name, len(dl))
		}
	}
	if len(deadLettered("flaky")) == 0 {
		t.Logf("flaky: no event needed more than 4 attempts (possible, but unusual at 30%% failures)")
	}
	t.Logf("takeover after kill -9: %v (lease TTL %v, target ≤ TTL+2s)", takeover.Round(10*time.Millisecond), leaseTTL)
	// How fast is a benchmark figure (docs/benchmarks.md), not asserted
	// here: under heavy load a takeover takes longer. That it happens at
	// all (within a minute) is asserted above.
	for i, s := range dispatchers {
		if i == victim {
			continue
		}
		if err := s.stop(t); err != nil {
			t.Errorf("dispatcher %d: graceful stop: %v\n%s", i, err, s.output())
		}
	}
	for _, s := range ingests {
		if err := s.stop(t); err != nil {
			t.Errorf("ingest: graceful stop: %v", err)
		}
	}
}

// metricValue scrapes one unlabelled metric from a serve process.
func metricValue(t *testing.T, s *server, name string) float64 {
	t.Helper()
	_, body := s.do(t, "GET", "/metrics", "", "")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// waitUntil polls cond until it holds; the timeout only bounds a failure.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sluiceFrames keeps the goroutine headers and sluice's own frames of a
// Go stack dump.
func sluiceFrames(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "goroutine ") || strings.Contains(line, "sluicehq/sluice/") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
