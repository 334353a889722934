package dispatch

// Benchmarks of delivery against the Delivery and Cost targets of
// targets.md. Each iteration of a benchmark is one whole experiment (a
// backlog drained, a steady load delivered, an idle window counted), so run
// them with -benchtime 1x and repeat with -count; docs/benchmarks.md has the
// commands and the results. Every figure with a target is a ratio against a
// baseline measured in the same run, or a request count.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/internal/miniotest"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Workload sizes. A backlog drain should last a few seconds on a 2-core
// machine; the steady loads run at the rate targets.md names.
const (
	benchSub            = "bench-sub"
	benchParts          = 4
	benchEventSize      = 1024
	backlogSingle       = 60_000  // events drained one per POST
	backlogBatched      = 600_000 // events drained 100 per POST
	backlogFanOut       = 100_000 // events drained to each of 1 or 10 subscriptions
	backlogPerAppend    = 1000    // records per Append (one segment each) when filling a backlog
	steadyRate          = 1000    // events/s
	steadyLatencyFor    = 5 * time.Second
	steadyCostFor       = 10 * time.Second
	floorSamples        = 300
	idleSettle          = 10 * time.Second
	idleWindow          = 10 * time.Second
	memoryWindow        = 3 * time.Second
	memoryLongWindow    = 20 * time.Second
	memorySample        = 50 * time.Millisecond
	memoryEventSize     = 200
	memoryPerAppend     = 250              // the same segment size for every backlog: memory must not grow with the backlog, and segments are what a reader holds
	benchStallAfter     = 30 * time.Second // no delivery progress for this long fails the run
	benchReadyTimeout   = time.Minute
	benchKeylessSlice   = 10 * time.Millisecond // ingest's rotation of keyless events over partitions
	benchWatchEvery     = 2 * time.Second       // sluice serve's --watch-every
	benchPreferredBatch = schemas.MaxPreferredBatchSizeInKilobytes
)

// benchWords make event padding that compresses about as well as real JSON
// payloads (a run of one letter would make segments nearly free to read).
var benchWords = strings.Fields(`order customer item quantity price currency status shipped pending
	created updated warehouse region account invoice payment refund address street city postal country
	email phone sku discount total subtotal tax carrier tracking delivered returned cancelled priority
	standard express note gift wrap loyalty points tier gold silver bronze session device browser`)

// benchPad is 64 KiB of random words that event padding is cut from.
var benchPad = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 64<<10 {
		b.WriteString(benchWords[r.IntN(len(benchWords))])
		b.WriteByte(' ')
	}
	return b.Bytes()
})

// benchEvent is a canonical CloudEvent of size bytes (as ingest stores it)
// with fields (JSON members ending in a comma, or "") at the start of data.
func benchEvent(i, size int, fields string) []byte {
	head := `{"specversion":"1.0","id":"e` + strconv.Itoa(i) + `","source":"/bench","type":"bench.event","subject":"orders/` +
		strconv.Itoa(i) + `","time":"2026-11-26T00:00:00Z","datacontenttype":"application/json","data":{` + fields + `"pad":"`
	const tail = `"}}`
	n := max(size-len(head)-len(tail), 0)
	pad := benchPad()
	off := int(uint(i) * 7919 % uint(len(pad)-n))
	out := make([]byte, 0, len(head)+n+len(tail))
	out = append(out, head...)
	out = append(out, pad[off:off+n]...)
	return append(out, tail...)
}

// probeDriver is a store driver that tells apart what Store.Stats cannot:
// it counts the GETs of segments and times the GETs of segments and of
// manifest entries that exist (what a reader waits for between a commit
// and a delivery).
type probeDriver struct {
	objectlog.Driver
	segGets atomic.Int64
	lat     struct {
		sync.Mutex
		seg, entry []time.Duration
	}
}

func isSegment(key string) bool { return strings.Contains(key, "/seg/") }

func (c *probeDriver) Get(ctx context.Context, key string) ([]byte, objectlog.ObjectInfo, error) {
	seg := isSegment(key)
	if seg {
		c.segGets.Add(1)
	}
	t0 := time.Now()
	data, info, err := c.Driver.Get(ctx, key)
	if d := time.Since(t0); err == nil && (seg || strings.Contains(key, "/manifest/")) {
		c.lat.Lock()
		if seg {
			c.lat.seg = append(c.lat.seg, d)
		} else {
			c.lat.entry = append(c.lat.entry, d)
		}
		c.lat.Unlock()
	}
	return data, info, err
}

// getLatencies returns the GET latencies recorded since the last call.
func (c *probeDriver) getLatencies() (seg, entry []time.Duration) {
	c.lat.Lock()
	defer c.lat.Unlock()
	seg, entry = c.lat.seg, c.lat.entry
	c.lat.seg, c.lat.entry = nil, nil
	return seg, entry
}

func (c *probeDriver) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if isSegment(key) {
		c.segGets.Add(1)
	}
	return c.Driver.GetRange(ctx, key, offset, length)
}

var _ objectlog.Driver = (*probeDriver)(nil)

// experiment owns what one iteration of a benchmark starts and stops it
// all in end, which is also a cleanup for an iteration that fails. The
// helpers below register no cleanups of their own: the testing package keeps
// a benchmark's first *B, and the closures its cleanups held, reachable for
// the whole -count loop, which would keep a stopped dispatcher's segment
// cache alive into the following runs and their memory figures.
type experiment struct {
	b     *testing.B
	stops []func()
}

func newExperiment(b *testing.B) *experiment {
	x := &experiment{b: b}
	b.Cleanup(x.end)
	return x
}

// end stops everything, the last started first, and forgets it.
func (x *experiment) end() {
	for i := len(x.stops) - 1; i >= 0; i-- {
		x.stops[i]()
	}
	x.stops = nil
}

// openProbed opens a store on url through a probeDriver. Two stores opened
// on one URL are two processes' views of it: each counts only its own
// requests.
func (x *experiment) openProbed(url string) (*objectlog.Store, *probeDriver) {
	x.b.Helper()
	s, err := objectlog.Open(context.Background(), url)
	if err != nil {
		x.b.Fatal(err)
	}
	c := &probeDriver{Driver: s.Driver()}
	st := objectlog.NewStore(c, objectlog.DefaultRetryPolicy)
	x.stops = append(x.stops, func() { st.Close() })
	return st, c
}

func (x *experiment) log(s *objectlog.Store, cfg objectlog.Config) *objectlog.Log {
	x.b.Helper()
	l, err := objectlog.NewLog(s, cfg)
	if err != nil {
		x.b.Fatal(err)
	}
	x.stops = append(x.stops, func() { l.Close() })
	return l
}

// benchStores are the stores a benchmark runs on: a directory, and a fresh
// bucket of the MinIO that scripts/minio.sh runs (skipped without it).
var benchStores = []struct {
	name string
	url  func(b *testing.B) string
}{
	{"minio", func(b *testing.B) string { return miniotest.Bucket(b) }},
	{"file", func(b *testing.B) string { return "file://" + b.TempDir() }},
}

// sink is a webhook endpoint that reads each request's body and answers 200
// at once: the cheapest receiver there is.
type sink struct {
	*httptest.Server
	requests atomic.Int64
}

// newSink starts a sink; onBody (if not nil) sees every body.
func newSink(b *testing.B, onBody func([]byte)) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onBody == nil {
			io.Copy(io.Discard, r.Body)
		} else {
			body, _ := io.ReadAll(r.Body)
			onBody(body)
		}
		s.requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(s.Close)
	return s
}

// batched sets a subscription's maxEventsPerBatch, with room for that many
// 1 KiB events in a batch.
func batched(n int) func(*schemas.Subscription) {
	return func(s *schemas.Subscription) {
		s.Properties.Destination.Properties.MaxEventsPerBatch = n
		s.Properties.Destination.Properties.PreferredBatchSizeInKilobytes = benchPreferredBatch
	}
}

// worker runs a dispatcher with the real clock; it logs warnings and errors
// only (info lines would fill benchmark output, which is always printed).
// snap may be nil when a registry watch supplies snapshots.
func (x *experiment) worker(l *objectlog.Log, cfg Config, snap *controlplane.Snapshot) *started {
	x.b.Helper()
	m := NewMetrics(nil)
	d, err := New(l, cfg, Options{Clock: RealClock{}, Metrics: m, Logger: zerolog.New(zerolog.NewTestWriter(x.b)).Level(zerolog.WarnLevel)})
	if err != nil {
		x.b.Fatal(err)
	}
	if snap != nil {
		d.Update(snap)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{d: d, cancel: cancel, done: make(chan error, 1), m: m}
	go func() { s.done <- d.Run(ctx) }()
	x.stops = append(x.stops, s.stop)
	return s
}

// successes is how many events the worker delivered to these subscriptions.
func (s *started) successes(topic string, subs ...string) int {
	var n float64
	for _, sub := range subs {
		n += testutil.ToFloat64(s.m.Success.WithLabelValues(topic, sub))
	}
	return int(n)
}

// diagnosis describes a worker's state for a failure message.
func (s *started) diagnosis(topic string, subs []string, st *objectlog.Store) string {
	var fails, dead float64
	for _, sub := range subs {
		fails += testutil.ToFloat64(s.m.AttemptFail.WithLabelValues(topic, sub))
		dead += testutil.ToFloat64(s.m.DeadLettered.WithLabelValues(topic, sub))
	}
	return fmt.Sprintf("units held %v, failed attempts %v, dead-lettered %v, leases lost %v, store requests so far: %v",
		testutil.ToFloat64(s.m.Units), fails, dead, testutil.ToFloat64(s.m.LeasesLost), st.Stats())
}

// awaitUnits waits until the worker holds n units.
func awaitUnits(b *testing.B, s *started, n int) {
	b.Helper()
	waitFor(b, fmt.Sprintf("the worker to hold %d units", n), benchReadyTimeout, func() bool {
		return int(testutil.ToFloat64(s.m.Units)) == n
	})
}

// awaitDelivered waits until count() reaches want, failing the run if it
// makes no progress for benchStallAfter (a stall is a bug to report, not a
// slow run), and returns when it got there.
func awaitDelivered(b *testing.B, what string, want int, count func() int, diag func() string) time.Time {
	b.Helper()
	last, lastAt := -1, time.Now()
	for {
		n := count()
		now := time.Now()
		if n >= want {
			return now
		}
		if n != last {
			last, lastAt = n, now
		} else if now.Sub(lastAt) > benchStallAfter {
			b.Fatalf("%s: delivery stalled at %d of %d for %v; %s", what, n, want, benchStallAfter, diag())
		}
		time.Sleep(time.Millisecond) // polling a counter; the error is 1 ms in seconds
	}
}

// publishBacklog appends n events of size bytes round robin over the
// partitions, perAppend records per Append (one segment each), the
// partitions in parallel. It returns the number of segments written.
func publishBacklog(b *testing.B, l *objectlog.Log, topic string, parts, n, size, perAppend int) int {
	b.Helper()
	var wg sync.WaitGroup
	var segments atomic.Int64
	errs := make(chan error, parts)
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			var recs []objectlog.Record
			for i := p; i < n; i += parts {
				recs = append(recs, objectlog.Record{Data: benchEvent(i, size, ""), Time: now})
				if len(recs) == perAppend || i+parts >= n {
					if _, err := l.Append(context.Background(), topic, p, recs); err != nil {
						errs <- err
						return
					}
					segments.Add(1)
					recs = nil
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return int(segments.Load())
}

// sent is one append of a steady load: when it started and how long it
// took to be acknowledged.
type sent struct {
	at  time.Time
	ack time.Duration
}

// steady offers one-event appends at rate per second for dur, open loop (an
// append starts every 1/rate whether or not earlier ones finished, each on
// its own goroutine, as ingest handlers do), keyless: rotating over the
// partitions by 10 ms time slice as ingest does. mk makes event i, stamped
// with the time just before its append.
func steady(b *testing.B, l *objectlog.Log, topic string, parts, rate int, dur time.Duration, mk func(i int, at time.Time) []byte) []sent {
	b.Helper()
	out := make([]sent, int(dur.Seconds()*float64(rate)))
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range out {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load generator, not waiting for a result
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			p := int(uint64(t0.UnixNano()/int64(benchKeylessSlice)) % uint64(parts))
			if _, err := l.Append(context.Background(), topic, p, []objectlog.Record{{Data: mk(i, t0), Time: t0}}); err != nil {
				b.Error(err)
			}
			out[i] = sent{t0, time.Since(t0)}
		}()
	}
	wg.Wait()
	return out
}

// commitFloor is objectlog's BenchmarkCommitFloor measured inline: one 1 KiB
// segment PUT (create-if-absent) followed by one 1 KiB manifest PUT
// (create-if-absent), back to back, n times. It returns the latencies.
func commitFloor(b *testing.B, s *objectlog.Store, n int) []time.Duration {
	b.Helper()
	ctx := context.Background()
	body := benchEvent(0, benchEventSize, "")
	lat := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		if _, err := s.PutIfAbsent(ctx, "floor/seg/"+ulid.Make().String(), body); err != nil {
			b.Fatal(err)
		}
		if _, err := s.PutIfAbsent(ctx, fmt.Sprintf("floor/manifest/%020d", i), body); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	return lat
}

// pct returns the q-quantile of lat (sorting it).
func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[min(int(q*float64(len(lat))), len(lat)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// addStats adds st into sum.
func addStats(sum, st objectlog.Stats) {
	for op, byRes := range st {
		if sum[op] == nil {
			sum[op] = map[objectlog.Result]int64{}
		}
		for res, c := range byRes {
			sum[op][res] += c
		}
	}
}

// reportOps reports requests by operation times scale as "<op>-<unit>",
// those of them that did not succeed as "<op>-<result>-<unit>" (a GET of an
// entry not yet written is a not_found), and the total as "store-<unit>".
func reportOps(b *testing.B, st objectlog.Stats, scale float64, unit string) {
	ops := make([]string, 0, len(st))
	for op := range st {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	for _, op := range ops {
		byRes := st[objectlog.Op(op)]
		b.ReportMetric(float64(st.Total(objectlog.Op(op)))*scale, op+"-"+unit)
		for res, c := range byRes {
			if res != objectlog.ResultOK && c != 0 {
				b.ReportMetric(float64(c)*scale, op+"-"+string(res)+"-"+unit)
			}
		}
	}
	b.ReportMetric(float64(st.Total())*scale, "store-"+unit)
}

// BenchmarkDeliver drains a backlog of 1 KiB events on a 4-partition topic
// of a directory store to a no-op webhook, one subscription delivering one
// event per request (single) or up to 100 (batch100), one dispatcher with
// LowLatency settings; the clock runs from the dispatcher's start until the
// last event is delivered. noop-http is the same-run baseline: as many
// 1 KiB POSTs as single makes, 64 in flight (4 partitions × Concurrency 16),
// from a client with NewSender's transport, to the same kind of receiver.
// Store requests are the dispatcher's own (its process's store).
func BenchmarkDeliver(b *testing.B) {
	var noop float64 // noop-http requests/s earlier in this run
	b.Run("noop-http", func(b *testing.B) {
		noop = benchNoopHTTP(b, backlogSingle, benchParts*LowLatency.Concurrency)
	})
	b.Run("single", func(b *testing.B) { benchDeliver(b, 1, backlogSingle, noop) })
	b.Run("batch100", func(b *testing.B) { benchDeliver(b, 100, backlogBatched, noop) })
}

func benchNoopHTTP(b *testing.B, n, inflight int) float64 {
	s := newSink(b, nil)
	client := NewSender(zerolog.Nop()).Client
	body := benchEvent(0, benchEventSize, "")
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					req, _ := http.NewRequest(http.MethodPost, s.URL, bytes.NewReader(body))
					req.Header.Set("Content-Type", contentTypeCloudEvent)
					req.Header.Set("aeg-event-type", "Notification")
					req.Header.Set("aeg-subscription-name", "S")
					req.Header.Set("aeg-delivery-count", "0")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		total += time.Since(start)
	}
	rate := float64(n*b.N) / total.Seconds()
	b.ReportMetric(rate, "req/s")
	return rate
}

func benchDeliver(b *testing.B, maxEvents, n int, noop float64) {
	var (
		total    time.Duration
		requests int64
		ops      = objectlog.Stats{}
	)
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		url := "file://" + b.TempDir()
		pubStore, _ := x.openProbed(url)
		e := newEnv(b, pubStore, benchParts)
		s := newSink(b, nil)
		e.subscribe(benchSub, s.URL, batched(maxEvents))
		snap := e.snapshot()
		pub := x.log(pubStore, objectlog.LowLatency)
		publishBacklog(b, pub, e.topic, benchParts, n, benchEventSize, backlogPerAppend)
		pub.Close()

		// The dispatcher is another process: its own store and log.
		store, _ := x.openProbed(url)
		l := x.log(store, objectlog.LowLatency)
		runtime.GC()
		base := store.Stats()
		b.StartTimer()
		start := time.Now()
		w := x.worker(l, LowLatency, snap)
		end := awaitDelivered(b, "deliver", n, func() int { return w.successes(e.topic, benchSub) },
			func() string { return w.diagnosis(e.topic, []string{benchSub}, store) })
		b.StopTimer()
		total += end.Sub(start)
		addStats(ops, store.Stats().Sub(base))
		requests += s.requests.Load()
		x.end()
	}
	events := float64(n * b.N)
	rate := events / total.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(requests)/total.Seconds(), "req/s")
	b.ReportMetric(events/float64(requests), "events/req")
	if noop > 0 {
		b.ReportMetric(rate/noop, "events/s-per-noop-req/s")
	}
	reportOps(b, ops, 1e6/events, "req/1M-events")
}

// BenchmarkFanOut drains one backlog (1 KiB events, 4 partitions, a
// directory store) to 1 or 10 subscriptions of the topic on one dispatcher
// (maxEventsPerBatch 100, so that ten passes fit in seconds), and counts the
// segment GETs the dispatcher makes. The readers of a Log share decoded
// segments, so ten subscriptions should read each segment about once, as
// one does: targets.md wants ≤ 1.2× the segment reads of one.
func BenchmarkFanOut(b *testing.B) {
	var perSegment1 float64 // segment GETs per segment with one subscription, earlier in this run
	for _, subs := range []int{1, 10} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			perSegment := benchFanOut(b, subs, backlogFanOut)
			switch {
			case subs == 1:
				perSegment1 = perSegment
			case perSegment1 > 0:
				b.ReportMetric(perSegment/perSegment1, "segGETs-vs-1sub")
			}
		})
	}
}

func benchFanOut(b *testing.B, nsubs, n int) (segGETsPerSegment float64) {
	var (
		total             time.Duration
		segGETs, segments int64
		subs              []string
	)
	for i := range nsubs {
		subs = append(subs, fmt.Sprintf("sub%02d", i))
	}
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		url := "file://" + b.TempDir()
		pubStore, _ := x.openProbed(url)
		e := newEnv(b, pubStore, benchParts)
		s := newSink(b, nil)
		for _, sub := range subs {
			e.subscribe(sub, s.URL+"/"+sub, batched(100))
		}
		snap := e.snapshot()
		pub := x.log(pubStore, objectlog.LowLatency)
		segments += int64(publishBacklog(b, pub, e.topic, benchParts, n, benchEventSize, backlogPerAppend))
		pub.Close()

		store, counter := x.openProbed(url)
		l := x.log(store, objectlog.LowLatency)
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		w := x.worker(l, LowLatency, snap)
		end := awaitDelivered(b, "fan-out", n*nsubs, func() int { return w.successes(e.topic, subs...) },
			func() string { return w.diagnosis(e.topic, subs, store) })
		b.StopTimer()
		total += end.Sub(start)
		segGETs += counter.segGets.Load()
		x.end()
	}
	b.ReportMetric(float64(n*nsubs*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(segments)/float64(b.N), "segments")
	b.ReportMetric(float64(segGETs)/float64(b.N), "segGETs")
	b.ReportMetric(float64(segGETs)/float64(nsubs*b.N), "segGETs/sub")
	perSegment := float64(segGETs) / float64(segments)
	b.ReportMetric(perSegment, "segGETs/segment")
	return perSegment
}

// BenchmarkPublishToDelivery publishes at a steady 1,000 events/s for 5 s
// through Log.Append (one event per append, each on its own goroutine,
// keyless over 4 partitions as ingest spreads them) with LowLatency log and
// dispatch settings in one process, as `sluice serve` runs them, and the
// receiver records now − publish time for every event. Two baselines are
// measured on the same store first, in the same run: the commit floor (one
// 1 KiB segment PUT and one conditional PUT, as objectlog's
// BenchmarkCommitFloor), and the same steady load with nothing delivering
// it (publish-only-ack). after-ack is how long after its append returned an
// event was delivered: what dispatch adds.
func BenchmarkPublishToDelivery(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) { benchPublishToDelivery(b, st.url) })
	}
}

func benchPublishToDelivery(b *testing.B, url func(*testing.B) string) {
	var (
		lat, afterAck, acks, floor []time.Duration
		segGets, entryGets         []time.Duration
		publishAcks                []time.Duration // the same load, nothing delivering
		ops                        = objectlog.Stats{}
		events, duplicates         int
	)
	n := int(steadyLatencyFor.Seconds() * steadyRate)
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		store, counter := x.openProbed(url(b))
		e := newEnv(b, store, benchParts)
		// The receiver notes when each event arrived; the publish time
		// (data.t) and number (data.i) are in the event.
		var got struct {
			sync.Mutex
			at    []time.Time // by event number; zero: not yet
			count int         // deliveries, duplicates and warm-up included
			bad   int
		}
		got.at = make([]time.Time, n)
		s := newSink(b, func(body []byte) {
			now := time.Now()
			var ev struct {
				Data struct {
					T int64 `json:"t"`
					I int   `json:"i"`
				} `json:"data"`
			}
			err := json.Unmarshal(body, &ev)
			got.Lock()
			defer got.Unlock()
			got.count++
			switch {
			case err != nil || ev.Data.T == 0:
				got.bad++
			case ev.Data.I < 0 || ev.Data.I >= n: // warm-up
			case !got.at[ev.Data.I].IsZero():
				duplicates++
			default:
				got.at[ev.Data.I] = now
			}
		})
		count := func() int {
			got.Lock()
			defer got.Unlock()
			return got.count
		}
		floor = append(floor, commitFloor(b, store, floorSamples)...)
		l := x.log(store, objectlog.LowLatency)
		mk := func(i int, at time.Time) []byte {
			return benchEvent(i, benchEventSize, `"t":`+strconv.FormatInt(at.UnixNano(), 10)+`,"i":`+strconv.Itoa(i)+`,`)
		}
		// The same load with nothing delivering it (the subscription is made
		// after, so it starts after these events): what publishing alone
		// costs in this run.
		for _, sd := range steady(b, l, e.topic, benchParts, steadyRate, steadyLatencyFor, mk) {
			publishAcks = append(publishAcks, sd.ack)
		}

		e.subscribe(benchSub, s.URL, nil)
		w := x.worker(l, LowLatency, e.snapshot())
		awaitUnits(b, w, benchParts)
		// Warm up: every unit's reader waits at the tail.
		for p := range benchParts {
			now := time.Now()
			if _, err := l.Append(context.Background(), e.topic, p, []objectlog.Record{{Data: mk(-1-p, now), Time: now}}); err != nil {
				b.Fatal(err)
			}
		}
		diag := func() string { return w.diagnosis(e.topic, []string{benchSub}, store) }
		awaitDelivered(b, "warm-up", benchParts, count, diag)

		base := store.Stats()
		counter.getLatencies()
		b.StartTimer()
		sent := steady(b, l, e.topic, benchParts, steadyRate, steadyLatencyFor, mk)
		awaitDelivered(b, "steady", benchParts+n, count, diag)
		b.StopTimer()
		addStats(ops, store.Stats().Sub(base))
		sg, eg := counter.getLatencies()
		segGets, entryGets = append(segGets, sg...), append(entryGets, eg...)
		x.end()
		got.Lock()
		if got.bad > 0 {
			b.Errorf("%d deliveries without a publish time", got.bad)
		}
		for i, sd := range sent {
			if got.at[i].IsZero() {
				continue // not there when the count was reached: duplicates made it up
			}
			lat = append(lat, got.at[i].Sub(sd.at))
			afterAck = append(afterAck, got.at[i].Sub(sd.at.Add(sd.ack)))
			acks = append(acks, sd.ack)
		}
		got.Unlock()
		events += n
	}
	p50, floor50 := pct(lat, 0.5), pct(floor, 0.5)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(pct(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(pct(lat, 1)), "max-ms")
	b.ReportMetric(ms(pct(acks, 0.5)), "ack-p50-ms")
	b.ReportMetric(ms(pct(acks, 0.99)), "ack-p99-ms")
	b.ReportMetric(ms(pct(publishAcks, 0.5)), "publish-only-ack-p50-ms")
	b.ReportMetric(ms(pct(publishAcks, 0.99)), "publish-only-ack-p99-ms")
	b.ReportMetric(ms(pct(afterAck, 0.5)), "after-ack-p50-ms")
	b.ReportMetric(ms(pct(afterAck, 0.99)), "after-ack-p99-ms")
	b.ReportMetric(ms(pct(entryGets, 0.5)), "entry-GET-p50-ms")
	b.ReportMetric(ms(pct(segGets, 0.5)), "seg-GET-p50-ms")
	b.ReportMetric(ms(floor50), "floor-p50-ms")
	b.ReportMetric(ms(pct(floor, 0.99)), "floor-p99-ms")
	b.ReportMetric(float64(p50)/float64(floor50), "p50-per-floor-p50")
	b.ReportMetric(float64(len(lat))/float64(events), "delivered/published")
	b.ReportMetric(float64(duplicates), "duplicates")
	reportOps(b, ops, 1e6/float64(events), "req/1M-events")
}

// BenchmarkCostSteady counts every object-store request of one process
// publishing and delivering (a Log, a dispatcher and a registry watch, as
// `sluice serve` runs them) with LowCost log and dispatch settings: one
// partition, one subscription, a steady 1,000 events/s for 10 s, each
// event published and delivered once. targets.md: ≤ 10,000 requests per 1M
// events. The window runs from the first append to the last delivery.
func BenchmarkCostSteady(b *testing.B) {
	var (
		ops    = objectlog.Stats{}
		events int
		window time.Duration
	)
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		store, _ := x.openProbed(miniotest.Bucket(b))
		e := newEnv(b, store, 1)
		s := newSink(b, nil)
		e.subscribe(benchSub, s.URL, nil)
		l := x.log(store, objectlog.LowCost)
		w := x.worker(l, LowCost, nil)
		ctx, cancel := context.WithCancel(context.Background())
		watched := make(chan error, 1)
		go func() { watched <- e.reg.Watch(ctx, benchWatchEvery, w.d.Update) }()
		awaitUnits(b, w, 1)
		diag := func() string { return w.diagnosis(e.topic, []string{benchSub}, store) }
		mk := func(i int, _ time.Time) []byte { return benchEvent(i, benchEventSize, "") }
		// Warm up: the writer has found its tail and the reader waits there.
		if _, err := l.Append(context.Background(), e.topic, 0, []objectlog.Record{{Data: mk(-1, time.Now()), Time: time.Now()}}); err != nil {
			b.Fatal(err)
		}
		awaitDelivered(b, "warm-up", 1, func() int { return w.successes(e.topic, benchSub) }, diag)

		base := store.Stats()
		b.StartTimer()
		start := time.Now()
		n := len(steady(b, l, e.topic, 1, steadyRate, steadyCostFor, mk))
		end := awaitDelivered(b, "steady", n+1, func() int { return w.successes(e.topic, benchSub) }, diag)
		b.StopTimer()
		addStats(ops, store.Stats().Sub(base))
		events += n
		window += end.Sub(start)
		cancel()
		<-watched
		x.end()
	}
	b.ReportMetric(window.Seconds()/float64(b.N), "window-s")
	b.ReportMetric(float64(ops.Total())/window.Seconds(), "store-req/s")
	reportOps(b, ops, 1e6/float64(events), "req/1M-events")
}

// BenchmarkIdle counts every object-store request of a `sluice serve`
// dispatch process (a dispatcher with default settings and a registry
// watch every 2 s) over 10 s without traffic, after its units are held
// and 10 s more of settling (followers of quiet partitions go idle after
// IdleAfter). subs=100 is 10 topics × 10 subscriptions × 4 partitions
// (400 units); subs=1 shows how it scales. targets.md: ≤ 2 requests/s in
// total for 100 subscriptions.
func BenchmarkIdle(b *testing.B) {
	for _, c := range []struct{ topics, subsPerTopic int }{{1, 1}, {10, 10}} {
		b.Run(fmt.Sprintf("subs=%d", c.topics*c.subsPerTopic), func(b *testing.B) {
			benchIdle(b, c.topics, c.subsPerTopic)
		})
	}
}

func benchIdle(b *testing.B, topics, subsPerTopic int) {
	var (
		ops    = objectlog.Stats{}
		window time.Duration
	)
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		store, _ := x.openProbed(miniotest.Bucket(b))
		ctx, cancel := context.WithCancel(context.Background())
		reg := controlplane.New(store, time.Now)
		s := newSink(b, nil)
		for t := range topics {
			name := fmt.Sprintf("idle%02d", t)
			if _, _, err := reg.PutTopic(ctx, schemas.Topic{Name: name, Properties: schemas.TopicProperties{Partitions: benchParts}}, "", false); err != nil {
				b.Fatal(err)
			}
			for i := range subsPerTopic {
				sub := schemas.Subscription{Name: fmt.Sprintf("sub%02d", i), Properties: schemas.SubscriptionProperties{
					Destination: schemas.Destination{EndpointType: "WebHook", Properties: schemas.DestinationProperties{EndpointURL: s.URL}},
				}}
				if _, _, err := reg.PutSubscription(ctx, name, sub, "", false); err != nil {
					b.Fatal(err)
				}
			}
		}
		l := x.log(store, objectlog.DefaultConfig())
		w := x.worker(l, DefaultConfig(), nil)
		watched := make(chan error, 1)
		go func() { watched <- reg.Watch(ctx, benchWatchEvery, w.d.Update) }()
		awaitUnits(b, w, topics*subsPerTopic*benchParts)
		time.Sleep(idleSettle) // the state measured is "idle for a while"
		base := store.Stats()
		b.StartTimer()
		start := time.Now()
		time.Sleep(idleWindow) // the measurement window
		b.StopTimer()
		window += time.Since(start)
		addStats(ops, store.Stats().Sub(base))
		if got := s.requests.Load(); got != 0 {
			b.Errorf("%d deliveries without traffic", got)
		}
		cancel()
		<-watched
		x.end()
	}
	reportOps(b, ops, 1/window.Seconds(), "req/s")
	b.ReportMetric(float64(ops.Total())/window.Seconds()/float64(topics*subsPerTopic), "store-req/s/sub")
}

// BenchmarkBacklogMemory runs a dispatcher 1K or 1M events behind (~200 B
// events, 4 partitions, a directory store, one subscription delivering one
// event per request to a no-op receiver) for 3 s, sampling HeapInuse every
// 50 ms after a GC; it reports the peak. targets.md: 1M behind ≤ 1.1× the
// memory of 1K behind, and < 150 MiB. The backlog is published before the
// window, in Appends of 10,000 records, by a Log that is closed first.
// backlog=1M-20s watches the same for 20 s: long enough for the readers'
// shared segment cache to fill.
func BenchmarkBacklogMemory(b *testing.B) {
	var peak1K float64 // MiB, earlier in this run
	for _, c := range []struct {
		name   string
		n      int
		window time.Duration
	}{{"backlog=1K", 1000, memoryWindow}, {"backlog=1M", 1_000_000, memoryWindow}, {"backlog=1M-20s", 1_000_000, memoryLongWindow}} {
		b.Run(c.name, func(b *testing.B) {
			peak := benchBacklogMemory(b, c.n, c.window)
			switch {
			case c.n == 1000:
				peak1K = peak
			case peak1K > 0:
				b.ReportMetric(peak/peak1K, "peak-vs-1K")
			}
		})
	}
}

func benchBacklogMemory(b *testing.B, n int, window time.Duration) (peakMiB float64) {
	const mib = 1 << 20
	var (
		peak, baseHeap, live uint64
		delivered            int
		publish              time.Duration
	)
	b.StopTimer()
	for range b.N {
		x := newExperiment(b)
		url := "file://" + b.TempDir()
		pubStore, _ := x.openProbed(url)
		e := newEnv(b, pubStore, benchParts)
		s := newSink(b, nil)
		e.subscribe(benchSub, s.URL, nil)
		snap := e.snapshot()
		pub := x.log(pubStore, objectlog.LowLatency)
		t0 := time.Now()
		publishBacklog(b, pub, e.topic, benchParts, n, memoryEventSize, memoryPerAppend)
		publish += time.Since(t0)
		pub.Close()

		store, _ := x.openProbed(url)
		l := x.log(store, objectlog.LowLatency)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		baseHeap = max(baseHeap, m.HeapInuse)
		b.StartTimer()
		w := x.worker(l, LowLatency, snap)
		end := time.Now().Add(window)
		for time.Now().Before(end) {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			time.Sleep(memorySample) // the sampling period
		}
		b.StopTimer()
		delivered += w.successes(e.topic, benchSub)
		runtime.GC()
		runtime.ReadMemStats(&m)
		live = max(live, m.HeapAlloc)
		x.end()
	}
	peakMiB = float64(peak) / mib
	b.ReportMetric(peakMiB, "peak-heap-MiB")
	b.ReportMetric(float64(baseHeap)/mib, "start-heap-MiB")
	b.ReportMetric(float64(live)/mib, "end-live-MiB")
	b.ReportMetric(float64(delivered)/float64(b.N), "delivered")
	b.ReportMetric(publish.Seconds()/float64(b.N), "publish-s")
	return peakMiB
}
