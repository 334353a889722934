// Package ingest is the publish API: it authenticates requests with topic
// keys, validates CloudEvents and Event Grid events, and appends them to the
// log, answering 200 only once they are durable.
//
// A request is handled whole or not at all: it is read (up to the request
// limit), authenticated, and every event is parsed and validated before
// anything is appended, so a rejected request stores nothing. Accepted events
// go to partitions (by the CloudEvents partitionkey extension, else to the
// partition of the current 10 ms time slice, rotating) and are appended
// through the log's group commit; the answer waits for every partition's
// commit.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Config holds the publish limits.
type Config struct {
	// MaxEventBytes and MaxRequestBytes: Event Grid's limits are 1 MB each.
	MaxEventBytes   int
	MaxRequestBytes int
	// AppendTimeout bounds how long a request waits for its commit before
	// answering 503 (the events may still be committed; the client retries).
	AppendTimeout time.Duration
}

// DefaultConfig has Event Grid's limits.
func DefaultConfig() Config {
	return Config{MaxEventBytes: 1 << 20, MaxRequestBytes: 1 << 20, AppendTimeout: 30 * time.Second}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.MaxEventBytes < 1 || c.MaxRequestBytes < 1 || c.AppendTimeout <= 0 {
		return fmt.Errorf("ingest config: limits and timeout must be positive (event %d B, request %d B, timeout %v)", c.MaxEventBytes, c.MaxRequestBytes, c.AppendTimeout)
	}
	return nil
}

// TopicLookup finds a topic and its keys (Topics implements it).
type TopicLookup interface {
	Lookup(ctx context.Context, name string) (schemas.Topic, schemas.TopicKeys, error)
}

// Handler serves the publish routes.
type Handler struct {
	log     *objectlog.Log
	topics  TopicLookup
	cfg     Config
	metrics *Metrics
	logger  zerolog.Logger
	now     func() time.Time
}

// keylessSlice is how long events without a partition key keep going to
// one partition before the next takes over.
const keylessSlice = 10 * time.Millisecond

// New returns the publish handler. metrics may be nil.
func New(l *objectlog.Log, topics TopicLookup, cfg Config, metrics *Metrics, logger zerolog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{log: l, topics: topics, cfg: cfg, metrics: metrics, logger: logger, now: time.Now}, nil
}

// Routes mounts the publish API:
//
//	POST /topics/{topic}/api/events   Event Grid publish API (either input schema)
//	POST /topics/{topic}/events       CloudEvents HTTP binding: binary, structured, batched
func (h *Handler) Routes(r chi.Router) {
	r.Post("/topics/{topic}/api/events", h.publish(routeEventGrid))
	r.Post("/topics/{topic}/events", h.publish(routeCloudEvents))
}

type route int

const (
	routeEventGrid route = iota
	routeCloudEvents
)

func (h *Handler) publish(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		name := chi.URLParam(r, "topic")
		n, err := h.handle(r, rt, name)
		if err != nil {
			h.metrics.failed(name, err)
			apierr.Write(w, r, h.logger, err)
			return
		}
		h.metrics.succeeded(name, n, time.Since(start))
		w.WriteHeader(http.StatusOK)
	}
}

// handle does one publish and returns how many events it stored.
func (h *Handler) handle(r *http.Request, rt route, name string) (int, error) {
	ctx := r.Context()
	topic, keys, err := h.topics.Lookup(ctx, name)
	if err != nil {
		return 0, err
	}
	if err := authenticate(r, topic.Name, keys, h.now()); err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(h.cfg.MaxRequestBytes)+1))
	if err != nil {
		return 0, apierr.BadRequest(apierr.CodeBadRequest, "could not read the request body: "+err.Error())
	}
	if len(body) > h.cfg.MaxRequestBytes {
		return 0, apierr.TooLarge(fmt.Sprintf("the request is larger than %d bytes: send fewer events per request", h.cfg.MaxRequestBytes))
	}
	events, err := h.parse(r, rt, topic, body)
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, apierr.BadRequest(apierr.CodeBadRequest, "the request holds no events: send at least one")
	}
	for i, e := range events {
		if len(e.JSON) > h.cfg.MaxEventBytes {
			return 0, apierr.TooLarge(fmt.Sprintf("event [%d] (id %q) is %d bytes, more than the limit of %d", i, e.ID, len(e.JSON), h.cfg.MaxEventBytes))
		}
	}
	return len(events), h.append(ctx, topic, events)
}

// parse picks the parser by route, topic schema and content type.
func (h *Handler) parse(r *http.Request, rt route, topic schemas.Topic, body []byte) ([]schemas.Event, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil {
		return nil, apierr.UnsupportedMediaType(fmt.Sprintf("cannot parse Content-Type %q: %v", ct, err))
	}
	mt = strings.ToLower(mt)
	schema := topic.Properties.InputSchema
	source := "/topics/" + topic.Name
	if rt == routeCloudEvents && schema != schemas.CloudEventSchemaV1_0 {
		return nil, apierr.BadRequest(apierr.CodeBadRequest, fmt.Sprintf("topic %s takes %s events: publish them to /topics/%s/api/events", topic.Name, schema, topic.Name))
	}
	switch {
	case mt == "application/cloudevents-batch+json":
		if schema != schemas.CloudEventSchemaV1_0 {
			break
		}
		return schemas.ParseCloudEventBatch(body)
	case mt == "application/cloudevents+json":
		if schema != schemas.CloudEventSchemaV1_0 {
			break
		}
		e, err := schemas.ParseCloudEvent(body)
		return []schemas.Event{e}, err
	case rt == routeCloudEvents && r.Header.Get("ce-specversion") != "":
		e, err := schemas.ParseCloudEventBinary(r.Header, body)
		return []schemas.Event{e}, err
	case rt == routeEventGrid && schema == schemas.EventGridSchema &&
		(mt == "" || mt == "application/json" || mt == "text/json" || mt == "application/x-www-form-urlencoded"):
		// curl's default content type is form-urlencoded, and Microsoft's own
		// samples publish that way: the body decides.
		return schemas.ParseEventGridEvents(body, source)
	}
	if schema == schemas.EventGridSchema {
		return nil, apierr.UnsupportedMediaType(fmt.Sprintf("Content-Type %q: topic %s takes Event Grid events as application/json (a JSON array)", ct, topic.Name))
	}
	if rt == routeCloudEvents {
		return nil, apierr.UnsupportedMediaType(fmt.Sprintf("Content-Type %q: send application/cloudevents+json, application/cloudevents-batch+json, or a binary-mode event with ce-* headers", ct))
	}
	return nil, apierr.UnsupportedMediaType(fmt.Sprintf("Content-Type %q: topic %s takes CloudEvents: send application/cloudevents-batch+json (a JSON array) or application/cloudevents+json", ct, topic.Name))
}

// append spreads the events over partitions and waits for every commit.
func (h *Handler) append(ctx context.Context, topic schemas.Topic, events []schemas.Event) error {
	parts := topic.Properties.Partitions
	if parts < 1 {
		parts = 1
	}
	// Keyless events rotate over the partitions by time slice, not per
	// request: requests arriving together share one partition's group
	// commit (fewer, larger segments; on a directory store, fewer fsyncs per
	// event), and over any second every partition gets its share.
	keyless := int(uint64(h.now().UnixNano()/int64(keylessSlice)) % uint64(parts))
	byPart := map[int][]objectlog.Record{}
	now := h.now()
	for _, e := range events {
		p := keyless
		if e.PartitionKey != "" {
			f := fnv.New32a()
			f.Write([]byte(e.PartitionKey))
			p = int(f.Sum32() % uint32(parts))
		}
		// Every stored event has a time: Event Grid deliveries need one,
		// and replay by time reads it. Events that came without one get
		// the time they were accepted.
		if e.Time.IsZero() {
			stamped, err := schemas.StampTime(e, now)
			if err != nil {
				return fmt.Errorf("stamp publish time: %w", err)
			}
			e = stamped
		}
		byPart[p] = append(byPart[p], objectlog.Record{Data: e.JSON, Time: e.Time})
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.AppendTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(byPart))
	for p, recs := range byPart {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.log.Append(ctx, topic.Name, p, recs); err != nil {
				errs <- fmt.Errorf("partition %d: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		h.logger.Warn().Err(err).Str("topic", topic.Name).Msg("ingest: append failed")
		if errors.Is(err, objectlog.ErrClosed) {
			return apierr.Unavailable("sluice is shutting down: retry against another instance", time.Second)
		}
		return apierr.Unavailable("the store did not accept the events in time: retry (nothing was acknowledged)", time.Second).WithCause(err)
	}
	return nil
}
