package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/objectlog"
)

// TestBenchRequestBounds is the regression guard on what the object store
// bills: a tiny `sluice bench` on a directory store, with its request
// counts held to the bounds the design gives (not to times, which a shared
// machine makes noise). Terms that grow with time (polls, heartbeats,
// cursor writes) are bounded by the phase's own duration, so a slow run
// only loosens them.
func TestBenchRequestBounds(t *testing.T) {
	const (
		partitions = 2
		subs       = 3
		batch      = 100
		maxEvents  = 6000
	)
	cmd := exec.Command(sluiceBinary(t), "bench", "--duration", "3s", "--max-events", "6000", "--batch", "100",
		"--connections", "4", "--subscriptions", "3", "--partitions", "2", "--rate", "100", "--idle", "6s", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sluice bench: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bench: publish:") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout.String())
	}
	t.Logf("bench: %s", stdout.String())

	if rep.Baseline.RequestsPerSec <= 0 || rep.Publish.RatioToBaseline <= 0 {
		t.Errorf("no baseline or ratio: %+v", rep.Baseline)
	}
	p, d := rep.Publish, rep.Delivery
	if p.Errors != 0 || p.Events == 0 || p.Events > maxEvents {
		t.Fatalf("publish: %d events, %d errors (%s); want 1..%d, none failed", p.Events, p.Errors, p.FirstError, maxEvents)
	}
	if d.TimedOut || d.Delivered != d.Expected || d.Expected != p.Events*subs {
		t.Errorf("delivery: %d of %d (events %d × %d subscriptions), timed out %v", d.Delivered, d.Expected, p.Events, subs, d.TimedOut)
	}
	if d.Duplicates != 0 {
		t.Errorf("%d duplicates without any failure", d.Duplicates)
	}

	r := d.Requests
	requests := (p.Events + batch - 1) / batch
	secs := r.Seconds + 1
	units := float64(subs * partitions)
	lat := objectlog.LowLatency
	// Publishing: a request's events are committed at most once per
	// partition (one segment PUT and one manifest PUT, each create-if-absent),
	// plus a wake write per commit at most, and hints and checkpoints
	// amortised below one per commit. Not one write per event.
	if max := float64(requests*partitions) * 3; float64(r.ByOp["put_if_absent"]+r.ByOp["put"]) > max+20 {
		t.Errorf("writes: %d put_if_absent + %d put for %d publish requests to %d partitions; the design bound is %.0f",
			r.ByOp["put_if_absent"], r.ByOp["put"], requests, partitions, max)
	}
	// Delivery: the subscriptions of a worker share reads, so every entry and
	// segment written is read about once (fan-out does not multiply GETs), plus
	// tail polls (at most one per partition per PollMin while active) and the
	// registry's watch.
	found := float64(r.ByOp["get"] - r.NotFound)
	if max := 1.2*float64(r.ByOp["put_if_absent"]) + secs*(1+partitions); found > max {
		t.Errorf("reads that found an object: %.0f for %d objects created over %.1f s with %d subscriptions; want ≤ %.0f (shared reads)",
			found, r.ByOp["put_if_absent"], r.Seconds, subs, max)
	}
	if max := partitions * secs / lat.PollMin.Seconds(); float64(r.NotFound) > max {
		t.Errorf("not-found reads (tail polls): %d over %.1f s, want ≤ %.0f", r.NotFound, r.Seconds, max)
	}
	// Cursors: each unit writes its cursor at most every CursorEvery, plus
	// its acquisition.
	if max := units * (secs/dispatch.DefaultConfig().CursorEvery.Seconds() + 2); float64(r.ByOp["put_if_match"]) > max {
		t.Errorf("cursor writes: %d over %.1f s for %.0f units, want ≤ %.0f", r.ByOp["put_if_match"], r.Seconds, units, max)
	}
	if st := rep.Steady; st == nil || st.TimedOut || st.Delivered != st.Events*subs || st.ToDelivery.Count == 0 {
		t.Errorf("steady phase: %+v", rep.Steady)
	}
	// Idle: heartbeat and its LIST, registry watch and wake poll; the target
	// is ≤ 2 requests/s for the whole deployment whatever the subscriptions.
	if rep.Idle == nil || rep.Idle.PerSecond > 2 {
		t.Errorf("idle: %+v, want ≤ 2 requests/s", rep.Idle)
	}
	if rep.Process == nil || rep.Process.PeakRSSBytes == 0 || rep.Process.CPUSeconds <= 0 {
		t.Errorf("server process usage: %+v", rep.Process)
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--events-size", "big"}, "--events-size \"big\""},
		{[]string{"--server", "http://127.0.0.1:1"}, "admin token"},
		{[]string{"-o", "yaml"}, "-o \"yaml\""},
	} {
		out, err := exec.Command(sluiceBinary(t), append([]string{"bench"}, tc.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("sluice bench %v: %v\n%s\nwant an error mentioning %s", tc.args, err, out, tc.want)
		}
	}
}
