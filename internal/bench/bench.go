// Package bench is `sluice bench`: it measures a sluice deployment the way
// users ask about one — events per second, delivery latency, and what the
// object store bills — against a no-op baseline measured in the same run.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sluicehq/sluice/schemas"
)

// Config is one benchmark run.
type Config struct {
	// Server is the base URL of a running deployment to measure; empty:
	// start `Binary serve` on Store with Profile.
	Server string
	Token  string // the admin token of Server
	Store  string // store URL for a started deployment (empty: a temporary directory)
	Binary string // the sluice executable to start
	// Profile is the started deployment's --profile (low-latency or low-cost).
	Profile string
	// ServeArgs are extra flags for the started `sluice serve`.
	ServeArgs []string

	Duration      time.Duration // each load phase
	EventSize     int           // bytes per event, as published
	Connections   int           // concurrent publish requests
	Batch         int           // events per publish request, and the subscriptions' maxEventsPerBatch
	Subscriptions int
	Partitions    int
	Rate          int           // events/s of the steady phase (0: skip it)
	Idle          time.Duration // how long idle requests are counted (0: skip)
	// MaxEvents bounds the events of the full-speed phase (0: Duration only).
	MaxEvents int64
	// ReceiverAddr is where the no-op receiver listens; ReceiverHost is the
	// host the server reaches it at (default: the listen address's).
	ReceiverAddr, ReceiverHost string

	Progress io.Writer // one line per step (nil: none)
}

// DefaultConfig is `sluice bench` without flags.
func DefaultConfig() Config {
	return Config{Profile: "low-latency", Duration: 30 * time.Second, EventSize: 1024, Connections: 50, Batch: 1,
		Subscriptions: 1, Partitions: 4, Rate: 1000, Idle: 20 * time.Second, ReceiverAddr: "127.0.0.1:0"}
}

// Validate reports the first setting that cannot work, saying what to fix.
func (c Config) Validate() error {
	switch {
	case c.Duration <= 0 || c.Duration > time.Hour:
		return fmt.Errorf("--duration %v: want more than 0 and at most 1h", c.Duration)
	case c.EventSize < 200 || c.EventSize > 1<<20:
		return fmt.Errorf("--events-size %d: want 200 B to 1 MiB (an event's envelope alone takes about 150 bytes)", c.EventSize)
	case c.Connections < 1 || c.Connections > 1000:
		return fmt.Errorf("--connections %d: want 1 to 1000", c.Connections)
	case c.Batch < 1 || c.Batch > 5000:
		return fmt.Errorf("--batch %d: want 1 to 5000 (Event Grid's maxEventsPerBatch range)", c.Batch)
	case c.Batch*c.EventSize > 1<<20:
		return fmt.Errorf("--batch %d × --events-size %d is more than 1 MiB, the largest publish request", c.Batch, c.EventSize)
	case c.Subscriptions < 1 || c.Subscriptions > 500:
		return fmt.Errorf("--subscriptions %d: want 1 to 500", c.Subscriptions)
	case c.Partitions < 1 || c.Partitions > 64:
		return fmt.Errorf("--partitions %d: want 1 to 64", c.Partitions)
	case c.Rate < 0 || c.Rate > 1_000_000:
		return fmt.Errorf("--rate %d: want 0 (skip the steady phase) to 1000000 events/s", c.Rate)
	case c.Idle < 0 || c.Idle > time.Hour:
		return fmt.Errorf("--idle %v: want 0 (skip) to 1h", c.Idle)
	case c.MaxEvents < 0:
		return fmt.Errorf("--max-events %d: want 0 (no bound) or more", c.MaxEvents)
	case c.Server == "" && c.Binary == "":
		return errors.New("no sluice executable to start (internal error)")
	case c.Server == "" && c.Profile != "low-latency" && c.Profile != "low-cost":
		return fmt.Errorf("--profile %q: want low-latency or low-cost", c.Profile)
	}
	if c.Server != "" {
		u, err := url.Parse(c.Server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--server %q: want the deployment's base URL, like http://127.0.0.1:8080", c.Server)
		}
		if c.Token == "" {
			return errors.New("--server needs the admin token: --token or $SLUICE_TOKEN")
		}
	}
	return nil
}

// Report is what a run measured. Absolute rates on a shared machine are
// noise; the ratios to the same-run baseline are the figures.
type Report struct {
	Started  time.Time `json:"started"`
	Settings Settings  `json:"settings"`
	Baseline Baseline  `json:"baseline"`
	Publish  Publish   `json:"publish"`
	Delivery Delivery  `json:"delivery"`
	Steady   *Steady   `json:"steady,omitempty"`
	Idle     *Idle     `json:"idle,omitempty"`
	// Process is the started server's usage (absent with --server).
	Process *Process `json:"process,omitempty"`
}

// Settings echo the run's configuration.
type Settings struct {
	Store         string  `json:"store"`
	Profile       string  `json:"profile,omitempty"`
	DurationSec   float64 `json:"durationSeconds"`
	EventSize     int     `json:"eventSizeBytes"`
	Connections   int     `json:"connections"`
	Batch         int     `json:"batch"`
	Subscriptions int     `json:"subscriptions"`
	Partitions    int     `json:"partitions"`
	Rate          int     `json:"rate"`
}

// Baseline is the same publish load against a no-op handler.
type Baseline struct {
	Handler        string  `json:"handler"`
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requestsPerSecond"`
	Ack            Latency `json:"ack"`
}

// Publish is the full-speed publish phase.
type Publish struct {
	Events         int64   `json:"events"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"firstError,omitempty"`
	EventsPerSec   float64 `json:"eventsPerSecond"`
	RequestsPerSec float64 `json:"requestsPerSecond"`
	// RatioToBaseline: events/s over the baseline's requests/s (the targets' figure).
	RatioToBaseline float64 `json:"ratioToBaseline"`
	Ack             Latency `json:"ack"`
}

// Delivery is what the subscriptions received of the full-speed phase.
type Delivery struct {
	Expected     int64   `json:"expected"` // events × subscriptions
	Delivered    int64   `json:"delivered"`
	Duplicates   int64   `json:"duplicates"`
	EventsPerSec float64 `json:"eventsPerSecond"` // first publish to last delivery
	// RatioToPublish: delivered events/s over published events/s.
	RatioToPublish float64  `json:"ratioToPublish"`
	Requests       Requests `json:"storeRequests"` // publish and delivery, per event published and delivered
	TimedOut       bool     `json:"timedOut,omitempty"`
}

// Steady is the fixed-rate phase.
type Steady struct {
	Rate int `json:"rate"`
	// AchievedRate is the requests actually sent per second; below Rate
	// the server could not keep up even with maxSteadyInFlight requests out.
	AchievedRate float64  `json:"achievedRate"`
	Events       int64    `json:"events"`
	Errors       int64    `json:"errors"`
	Ack          Latency  `json:"ack"`
	ToDelivery   Latency  `json:"publishToDelivery"`
	Delivered    int64    `json:"delivered"`
	Requests     Requests `json:"storeRequests"`
	TimedOut     bool     `json:"timedOut,omitempty"`
}

// Idle is the object-store traffic of a deployment with nothing to do.
type Idle struct {
	Seconds       float64            `json:"seconds"`
	Subscriptions int                `json:"subscriptions"`
	Requests      int64              `json:"requests"`
	PerSecond     float64            `json:"requestsPerSecond"`
	ByOp          map[string]float64 `json:"byOp"`
}

// Requests are object-store requests over a phase, normalised to 1M events.
type Requests struct {
	Events  int64   `json:"events"`  // what the counts are normalised by
	Seconds float64 `json:"seconds"` // how long the phase took, publishing and delivery
	Total   int64   `json:"total"`
	// ByOp counts requests by operation (get, put_if_absent, list, …), all results.
	ByOp                map[string]int64   `json:"byOp"`
	NotFound            int64              `json:"notFound"`
	ConditionalFailures int64              `json:"conditionalFailures"`
	PerMillion          float64            `json:"perMillionEvents"`
	ByOpPerMillion      map[string]float64 `json:"byOpPerMillionEvents"`
	// CostPerMillionUSD is the request cost of 1M events at S3 list prices
	// (PUT, LIST $0.005 per 1,000; GET, HEAD $0.0004 per 1,000; DELETE free).
	CostPerMillionUSD float64 `json:"s3CostPerMillionEventsUsd"`
}

// S3 request prices (us-east-1 list), per request.
const (
	priceClassA = 0.005 / 1000  // PUT, COPY, POST, LIST
	priceClassB = 0.0004 / 1000 // GET, HEAD
)

func requestsOf(d storeCounts, events int64, elapsed time.Duration) Requests {
	r := Requests{Events: events, Seconds: elapsed.Seconds(), ByOp: map[string]int64{}, ByOpPerMillion: map[string]float64{}}
	cost := 0.0
	for k, v := range d {
		op, result, _ := strings.Cut(k, "/")
		n := int64(v)
		r.ByOp[op] += n
		r.Total += n
		switch result {
		case "not_found":
			r.NotFound += n
		case "precondition_failed", "conflict":
			r.ConditionalFailures += n
		}
		switch op {
		case "put", "put_if_absent", "put_if_match", "list":
			cost += float64(n) * priceClassA
		case "get", "get_range", "stat":
			cost += float64(n) * priceClassB
		}
	}
	if events > 0 {
		scale := 1e6 / float64(events)
		r.PerMillion = float64(r.Total) * scale
		for op, n := range r.ByOp {
			r.ByOpPerMillion[op] = float64(n) * scale
		}
		r.CostPerMillionUSD = cost * scale
	}
	return r
}

// Phases, as they appear in event ids.
const (
	phaseWarmup = iota
	phaseFull
	phaseSteady
)

type runner struct {
	cfg     Config
	run     string
	base    string
	token   string
	topic   string
	key     string
	client  *http.Client
	rc      *receiver
	dep     *deployment
	payload string // the data padding that makes an event EventSize bytes
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// Bound is the longest a run with cfg can take: every phase has its own
// deadline, and Run stops at this one whatever happens.
func Bound(cfg Config) time.Duration {
	drain := max(time.Minute, 2*cfg.Duration)
	b := 2*time.Minute /* start, setup */ + time.Minute /* warm-up */ + 2*cfg.Duration + drain + time.Minute /* teardown */
	if cfg.Rate > 0 {
		b += cfg.Duration + drain
	}
	if cfg.Idle > 0 {
		b += cfg.Idle + idleSettle
	}
	return b
}

// maxSteadyInFlight bounds the steady phase's concurrent requests.
const maxSteadyInFlight = 4096

// idleSettle is how long a deployment is left alone before idle requests
// are counted: cursor writes end, and the log's followers go idle (5 s).
const idleSettle = 12 * time.Second

// Run measures a deployment and returns the report.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, Bound(cfg))
	defer cancel()
	r := &runner{cfg: cfg, run: strings.ToLower(ulid.Make().String()[16:])}
	r.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.Connections + 8, MaxConnsPerHost: cfg.Connections + 8, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	defer r.client.CloseIdleConnections()
	rep = &Report{Started: time.Now().UTC(), Settings: Settings{Store: cfg.Store, DurationSec: cfg.Duration.Seconds(), EventSize: cfg.EventSize,
		Connections: cfg.Connections, Batch: cfg.Batch, Subscriptions: cfg.Subscriptions, Partitions: cfg.Partitions, Rate: cfg.Rate}}
	if cfg.Server == "" {
		rep.Settings.Profile = cfg.Profile
		if rep.Settings.Store == "" {
			rep.Settings.Store = "a temporary directory"
		}
		r.progress("starting sluice serve (--profile %s) on %s", cfg.Profile, rep.Settings.Store)
		r.dep, err = startDeployment(ctx, cfg)
		if err != nil {
			return nil, err
		}
		r.base, r.token = r.dep.base, r.dep.token
		defer func() {
			if serr := r.dep.stop(); serr != nil && err == nil {
				err = serr
			}
		}()
	} else {
		r.base, r.token = strings.TrimRight(cfg.Server, "/"), cfg.Token
		rep.Settings.Store = "the deployment at " + r.base
	}
	host := cfg.ReceiverHost
	r.rc, err = startReceiver(cfg.ReceiverAddr, r.run, cfg.Subscriptions)
	if err != nil {
		return nil, err
	}
	defer r.rc.close()
	if host == "" {
		host, _, _ = net.SplitHostPort(r.rc.ln.Addr().String())
	}
	// Pad events to EventSize, counting an id of typical length (a
	// 6-digit index and a current nanosecond time).
	r.payload = strings.Repeat("x", max(cfg.EventSize-len(r.event(phaseFull, 100000, time.Now(), "")), 1))

	if err := r.setup(ctx, host); err != nil {
		return nil, err
	}
	defer r.teardown()

	// Warm-up: one event through every subscription, so the dispatchers
	// have picked the subscriptions up before anything is timed.
	r.progress("warming up: one event through %d subscription(s)", cfg.Subscriptions)
	if err := r.publish(ctx, phaseWarmup, 0, 1); err != nil {
		return nil, fmt.Errorf("warm-up publish: %w", err)
	}
	if !r.awaitDelivery(ctx, phaseWarmup, 1, time.Minute, false) {
		return nil, fmt.Errorf("warm-up: the event did not reach all %d subscriptions within a minute; is the receiver at %s reachable from the server?", cfg.Subscriptions, r.rc.url(host, 0))
	}

	rep.Baseline = r.baseline(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := r.full(ctx, rep); err != nil {
		return nil, err
	}
	if cfg.Rate > 0 {
		if rep.Steady, err = r.steady(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Idle > 0 {
		if rep.Idle, err = r.idle(ctx); err != nil {
			return nil, err
		}
	}
	if r.dep != nil {
		p, err := readProcess(r.dep.pid)
		if err != nil {
			r.progress("cannot read the server's memory and CPU: %v", err)
		} else {
			rep.Process = &p
		}
	}
	return rep, ctx.Err()
}

// event renders one CloudEvent of the benchmark.
func (r *runner) event(phase int, index int64, sent time.Time, pad string) string {
	return `{"specversion":"1.0","id":"` + eventID(r.run, phase, index, sent) +
		`","source":"/sluice/bench","type":"sluice.bench","datacontenttype":"application/json","data":{"pad":"` + pad + `"}}`
}

// body renders a publish request of n events from index first.
func (r *runner) body(phase int, first int64, n int) (string, []byte) {
	now := time.Now()
	if r.cfg.Batch == 1 && n == 1 {
		return "application/cloudevents+json; charset=utf-8", []byte(r.event(phase, first, now, r.payload))
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.event(phase, first+int64(i), now, r.payload))
	}
	b.WriteByte(']')
	return "application/cloudevents-batch+json; charset=utf-8", b.Bytes()
}

func (r *runner) post(ctx context.Context, path, contentType string, body []byte, header map[string]string) error {
	return r.postWith(ctx, r.client, path, contentType, body, header)
}

func (r *runner) postWith(ctx context.Context, client *http.Client, path, contentType string, body []byte, header map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (r *runner) publish(ctx context.Context, phase int, first int64, n int) error {
	ct, body := r.body(phase, first, n)
	return r.post(ctx, "/topics/"+r.topic+"/events", ct, body, map[string]string{"aeg-sas-key": r.key})
}

// api makes an admin API request and decodes its answer into out (if not nil).
func (r *runner) api(ctx context.Context, method, path string, in, out any, header map[string]string) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (r *runner) setup(ctx context.Context, host string) error {
	r.topic = "bench-" + r.run
	r.progress("creating topic %s (%d partitions) and %d subscription(s) to the no-op receiver at %s", r.topic, r.cfg.Partitions, r.cfg.Subscriptions, r.rc.url(host, 0))
	topic := schemas.Topic{Name: r.topic, Properties: schemas.TopicProperties{Partitions: r.cfg.Partitions, RetentionInDays: 1}}
	if err := r.api(ctx, http.MethodPut, "/api/topics/"+r.topic, topic, nil, map[string]string{"If-None-Match": "*"}); err != nil {
		return fmt.Errorf("create the benchmark topic: %w", err)
	}
	var keys schemas.TopicKeys
	if err := r.api(ctx, http.MethodPost, "/api/topics/"+r.topic+"/listKeys", nil, &keys, nil); err != nil {
		return fmt.Errorf("read the benchmark topic's keys: %w", err)
	}
	r.key = keys.Key1
	for i := 0; i < r.cfg.Subscriptions; i++ {
		sub := schemas.Subscription{Name: fmt.Sprintf("sub%03d", i), Properties: schemas.SubscriptionProperties{
			Destination: schemas.Destination{EndpointType: "WebHook", Properties: schemas.DestinationProperties{
				EndpointURL: r.rc.url(host, i), MaxEventsPerBatch: r.cfg.Batch, PreferredBatchSizeInKilobytes: 1024,
			}},
			EventDeliverySchema: schemas.CloudEventSchemaV1_0,
		}}
		if err := r.api(ctx, http.MethodPut, "/api/topics/"+r.topic+"/eventSubscriptions/"+sub.Name, sub, nil, nil); err != nil {
			return fmt.Errorf("create subscription %s: %w", sub.Name, err)
		}
	}
	return nil
}

// teardown deletes the benchmark's topic (and with it its subscriptions
// and delivery state) from a deployment that outlives the run.
func (r *runner) teardown() {
	if r.dep != nil {
		return // a started deployment's store goes with it, or is the user's to keep
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.api(ctx, http.MethodDelete, "/api/topics/"+r.topic, nil, nil, nil); err != nil {
		r.progress("could not delete the benchmark topic %s: %v", r.topic, err)
	}
}

// awaitDelivery waits until each subscription has received n distinct
// events of a phase, or timeout passes; it reports progress every few
// seconds. (Events of a request that failed may have been committed and
// delivered too; they count, so with failed requests this is a lower bound.)
// On a timeout it names the first events subscription 0 lacks.
func (r *runner) awaitDelivery(ctx context.Context, phase int, n int64, timeout time.Duration, report bool) bool {
	want := n * int64(r.cfg.Subscriptions)
	deadline := time.Now().Add(timeout)
	lastReport := time.Now()
	for {
		got, _, _, _, _ := r.rc.stats(phase)
		if got >= want {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if report {
				r.progress("  gave up waiting: %d of %d delivered; subscription 0 lacks events %v…", got, want, r.rc.missing(phase, 0, n, 5))
			}
			return false
		}
		if report && time.Since(lastReport) > 5*time.Second {
			r.progress("  delivered %d of %d", got, want)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *runner) baseline(ctx context.Context) Baseline {
	cfg := r.cfg
	r.progress("baseline: %d connections posting %d-event requests to the server's no-op handler (/dev/null) for %v", cfg.Connections, cfg.Batch, cfg.Duration)
	b := Baseline{Handler: "POST /dev/null on the same server"}
	res := closedLoop(ctx, cfg.Connections, cfg.Duration, 0, func(ctx context.Context, seq int64) error {
		ct, body := r.body(phaseWarmup, seq*int64(cfg.Batch), cfg.Batch)
		return r.post(ctx, "/dev/null", ct, body, nil)
	})
	if res.Errors > 0 && len(res.Latencies) == 0 {
		b.Handler = "none: " + res.FirstErr.Error() + " (start the server with --dev-echo for a baseline)"
		return b
	}
	b.Requests = int64(len(res.Latencies))
	b.RequestsPerSec = float64(b.Requests) / res.Elapsed.Seconds()
	b.Ack = summarize(res.Latencies)
	r.progress("  %.0f requests/s", b.RequestsPerSec)
	return b
}

func (r *runner) counts(ctx context.Context) (storeCounts, error) {
	c, err := scrapeStore(ctx, r.client, r.base, r.token)
	if err != nil {
		return nil, fmt.Errorf("store request counts: %w", err)
	}
	return c, nil
}

func (r *runner) full(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	before, err := r.counts(ctx)
	if err != nil {
		return err
	}
	r.progress("publish: %d connections, %d event(s) of %d B per request, for %v", cfg.Connections, cfg.Batch, cfg.EventSize, cfg.Duration)
	maxReq := int64(0)
	if cfg.MaxEvents > 0 {
		maxReq = (cfg.MaxEvents + int64(cfg.Batch) - 1) / int64(cfg.Batch)
	}
	start := time.Now()
	res := closedLoop(ctx, cfg.Connections, cfg.Duration, maxReq, func(ctx context.Context, seq int64) error {
		return r.publish(ctx, phaseFull, seq*int64(cfg.Batch), cfg.Batch)
	})
	p := &rep.Publish
	p.Requests, p.Errors = res.Requests, res.Errors
	if res.FirstErr != nil {
		p.FirstError = res.FirstErr.Error()
	}
	p.Events = int64(len(res.Latencies)) * int64(cfg.Batch)
	p.EventsPerSec = float64(p.Events) / res.Elapsed.Seconds()
	p.RequestsPerSec = float64(len(res.Latencies)) / res.Elapsed.Seconds()
	p.Ack = summarize(res.Latencies)
	if rep.Baseline.RequestsPerSec > 0 {
		p.RatioToBaseline = p.EventsPerSec / rep.Baseline.RequestsPerSec
	}
	r.progress("  %.0f events/s (%.0f requests/s), ack p50 %.2f ms p99 %.2f ms, %d errors", p.EventsPerSec, p.RequestsPerSec, p.Ack.P50, p.Ack.P99, p.Errors)

	// Every event of an acknowledged request must be delivered.
	d := &rep.Delivery
	d.Expected = p.Events * int64(cfg.Subscriptions)
	r.progress("delivery: waiting for %d events × %d subscription(s)", p.Events, cfg.Subscriptions)
	d.TimedOut = !r.awaitDelivery(ctx, phaseFull, p.Events, max(time.Minute, 2*cfg.Duration), true)
	got, dups, _, last, _ := r.rc.stats(phaseFull)
	d.Delivered, d.Duplicates = got, dups
	if span := last.Sub(start).Seconds(); span > 0 {
		d.EventsPerSec = float64(got) / span
	}
	if p.EventsPerSec > 0 {
		d.RatioToPublish = d.EventsPerSec / (p.EventsPerSec * float64(cfg.Subscriptions))
	}
	after, err := r.counts(ctx)
	if err != nil {
		return err
	}
	d.Requests = requestsOf(after.sub(before), p.Events, time.Since(start))
	r.progress("  %.0f deliveries/s, %d duplicates; %.0f store requests per 1M events", d.EventsPerSec, d.Duplicates, d.Requests.PerMillion)
	return nil
}

func (r *runner) steady(ctx context.Context) (*Steady, error) {
	cfg := r.cfg
	before, err := r.counts(ctx)
	if err != nil {
		return nil, err
	}
	// Enough requests in flight to hold the rate with acks as slow as 2 s
	// (a low-cost profile acks after its 1 s flush): an open loop capped
	// by too few connections would measure a lower rate than it reports.
	inFlight := min(max(cfg.Connections, 2*cfg.Rate), maxSteadyInFlight)
	r.progress("steady: %d single-event requests/s for %v (up to %d in flight)", cfg.Rate, cfg.Duration, inFlight)
	steadyClient := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: inFlight, MaxConnsPerHost: inFlight, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	defer steadyClient.CloseIdleConnections()
	start := time.Now()
	res := openLoop(ctx, float64(cfg.Rate), inFlight, cfg.Duration, func(ctx context.Context, seq int64) error {
		ct, body := r.body(phaseSteady, seq, 1)
		return r.postWith(ctx, steadyClient, "/topics/"+r.topic+"/events", ct, body, map[string]string{"aeg-sas-key": r.key})
	})
	s := &Steady{Rate: cfg.Rate, Events: int64(len(res.Latencies)), Errors: res.Errors, Ack: summarize(res.Latencies)}
	s.AchievedRate = float64(res.Requests) / cfg.Duration.Seconds()
	s.TimedOut = !r.awaitDelivery(ctx, phaseSteady, s.Events, max(time.Minute, 2*cfg.Duration), true)
	got, _, _, _, lat := r.rc.stats(phaseSteady)
	s.Delivered, s.ToDelivery = got, summarize(lat)
	after, err := r.counts(ctx)
	if err != nil {
		return nil, err
	}
	s.Requests = requestsOf(after.sub(before), s.Events, time.Since(start))
	r.progress("  %.0f requests/s sent; publish→delivery p50 %.1f ms p99 %.1f ms; ack p50 %.2f ms p99 %.2f ms; %.0f store requests per 1M events",
		s.AchievedRate, s.ToDelivery.P50, s.ToDelivery.P99, s.Ack.P50, s.Ack.P99, s.Requests.PerMillion)
	return s, nil
}

func (r *runner) idle(ctx context.Context) (*Idle, error) {
	r.progress("idle: letting the deployment settle for %v, then counting store requests for %v", idleSettle, r.cfg.Idle)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(idleSettle):
	}
	before, err := r.counts(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.cfg.Idle):
	}
	after, err := r.counts(ctx)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	d := after.sub(before)
	out := &Idle{Seconds: secs, Subscriptions: r.cfg.Subscriptions, ByOp: map[string]float64{}}
	for k, v := range d {
		op, _, _ := strings.Cut(k, "/")
		out.Requests += int64(v)
		out.ByOp[op] += v / secs
	}
	out.PerSecond = float64(out.Requests) / secs
	r.progress("  %.2f requests/s", out.PerSecond)
	return out, nil
}

// sortedOps lists a count map's operations, largest first.
func sortedOps[V int64 | float64](m map[string]V) []string {
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if m[ops[i]] != m[ops[j]] {
			return m[ops[i]] > m[ops[j]]
		}
		return ops[i] < ops[j]
	})
	return ops
}
