package bench

import (
	"strings"
	"testing"
	"time"
)

func TestNextID(t *testing.T) {
	body := `[{"specversion":"1.0","id":"a.1.2.3","data":{"pad":"x"}}, {"id" : "b.1.2.3"},{"idx":"no"},{"id":5}]`
	var got []string
	for rest := []byte(body); ; {
		id, after, ok := nextID(rest)
		if !ok {
			break
		}
		got = append(got, id)
		rest = after
	}
	if strings.Join(got, " ") != "a.1.2.3 b.1.2.3" {
		t.Errorf("ids %q, want [a.1.2.3 b.1.2.3]", got)
	}
}

func FuzzNextID(f *testing.F) {
	f.Add([]byte(`{"id":"r.1.2.3"}`))
	f.Add([]byte(`"id"   :  "`))
	f.Add([]byte(`[{"id":"x"},{"id": "y"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for n, total := 0, len(b); n <= total; n++ {
			_, rest, ok := nextID(b)
			if !ok {
				return
			}
			if len(rest) >= len(b) {
				t.Fatalf("nextID did not advance: %d bytes left of %d", len(rest), len(b))
			}
			b = rest
		}
		t.Fatal("more ids than bytes")
	})
}

func TestReceiverCountsEachEventOncePerSubscription(t *testing.T) {
	rc := &receiver{run: "run", subs: 2, phases: map[int]*phaseStats{}}
	sent := time.Now()
	for _, d := range []struct {
		sub   int
		index int64
	}{{0, 0}, {0, 1}, {1, 0}, {0, 1}, {1, 5}} {
		rc.record(d.sub, phaseFull, d.index, sent, sent.Add(time.Millisecond))
	}
	unique, dups, _, _, lat := rc.stats(phaseFull)
	if unique != 4 || dups != 1 || len(lat) != 4 {
		t.Errorf("unique %d, duplicates %d, %d latencies; want 4, 1, 4", unique, dups, len(lat))
	}
	if m := rc.missing(phaseFull, 1, 6, 10); len(m) != 4 || m[0] != 1 {
		t.Errorf("missing for sub 1: %v, want [1 2 3 4]", m)
	}
	if _, _, _, ok := rc.parseID("other.1.2.3"); ok {
		t.Error("an id of another run was accepted")
	}
	if ph, idx, ts, ok := rc.parseID(eventID("run", phaseSteady, 42, sent)); !ok || ph != phaseSteady || idx != 42 || !ts.Equal(time.Unix(0, sent.UnixNano())) {
		t.Errorf("round trip: %d %d %v %v", ph, idx, ts, ok)
	}
}

func TestParseStoreCounts(t *testing.T) {
	body := []byte(`# HELP sluice_store_requests_total x
# TYPE sluice_store_requests_total counter
sluice_store_requests_total{op="get",result="ok"} 10
sluice_store_requests_total{op="get",result="not_found"} 5
sluice_store_requests_total{op="put_if_absent",result="precondition_failed"} 2
sluice_store_requests_total{op="put",result="ok"} 4
sluice_other_total 3
`)
	c := parseStoreCounts(body)
	r := requestsOf(c.sub(storeCounts{"get/ok": 4}), 1000, time.Second)
	if r.Total != 17 || r.ByOp["get"] != 11 || r.NotFound != 5 || r.ConditionalFailures != 2 {
		t.Errorf("requests %+v", r)
	}
	if r.PerMillion != 17000 {
		t.Errorf("per million %v, want 17000", r.PerMillion)
	}
	// 6 class-A (put) at $0.005/1000 and 11 class-B (get) at $0.0004/1000, for 1000 events.
	want := (6*priceClassA + 11*priceClassB) * 1000
	if d := r.CostPerMillionUSD - want; d > 1e-9 || d < -1e-9 {
		t.Errorf("cost %v, want %v", r.CostPerMillionUSD, want)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(ds)
	if l.P50 != 50 || l.P90 != 90 || l.P99 != 99 || l.Max != 100 || l.Count != 100 {
		t.Errorf("summary %+v", l)
	}
	if (summarize(nil) != Latency{}) {
		t.Error("empty summary not zero")
	}
}

func TestValidateSaysWhatToFix(t *testing.T) {
	ok := DefaultConfig()
	ok.Binary = "sluice"
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Batch = 0 }, "--batch 0"},
		{func(c *Config) { c.EventSize = 10 }, "--events-size 10"},
		{func(c *Config) { c.Batch, c.EventSize = 5000, 1024 }, "more than 1 MiB"},
		{func(c *Config) { c.Server = "127.0.0.1:8080" }, "base URL"},
		{func(c *Config) { c.Server = "http://127.0.0.1:8080" }, "admin token"},
		{func(c *Config) { c.Profile = "cheap" }, "low-latency or low-cost"},
		{func(c *Config) { c.Duration = 0 }, "--duration"},
	} {
		c := ok
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error mentioning %q", c, err, tc.want)
		}
	}
}
