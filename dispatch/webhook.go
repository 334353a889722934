package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/schemas"
)

// Delivery is one HTTP request to a WebHook destination: one event, or a
// batch of them.
type Delivery struct {
	URL string
	// Schema is the subscription's eventDeliverySchema:
	// schemas.CloudEventSchemaV1_0 or schemas.EventGridSchema.
	Schema string
	// Batched is maxEventsPerBatch > 1. It decides the CloudEvents body:
	// a batch (a JSON array) even for one event, or a single event.
	Batched bool
	// Topic and Subscription name the subscription.
	Topic, Subscription string
	Events              []*Event
	// Attempt is how many attempts were made before this one; it is sent
	// as aeg-delivery-count.
	Attempt int
	// Headers are the subscription's delivery attribute mappings.
	Headers []schemas.DeliveryAttributeMapping
	// Timeout bounds the whole request, reading the answer included
	// (0: DefaultDeliveryTimeout).
	Timeout time.Duration
	// SigningSecrets (whsec_…) sign the delivery per Standard Webhooks;
	// two during a rotation; none: unsigned.
	SigningSecrets []string
}

// DefaultDeliveryTimeout is how long Event Grid waits for an endpoint.
const DefaultDeliveryTimeout = 30 * time.Second

// maxResponseBody is how much of an answer is read (and then dropped) so
// that its connection can be reused; a longer one closes the connection.
const maxResponseBody = 64 << 10

// maxRetryAfter bounds a Retry-After: Event Grid keeps no event longer.
const maxRetryAfter = 24 * time.Hour

// Delivery content types.
const (
	contentTypeCloudEvent      = "application/cloudevents+json"
	contentTypeCloudEventBatch = "application/cloudevents-batch+json"
	contentTypeEventGrid       = "application/json"
)

// RenderBody renders d's events in its delivery schema. CloudEvents go as
// one structured event (application/cloudevents+json; d must have exactly
// one event) or, when d.Batched, as a batch
// (application/cloudevents-batch+json). Event Grid schema events always go
// as a JSON array (application/json), as Event Grid sends them.
func RenderBody(d *Delivery) (contentType string, body []byte, err error) {
	if len(d.Events) == 0 {
		return "", nil, errors.New("dispatch: render delivery: no events")
	}
	switch d.Schema {
	case schemas.CloudEventSchemaV1_0:
		if !d.Batched {
			if len(d.Events) != 1 {
				return "", nil, fmt.Errorf("dispatch: render delivery: %d events for an unbatched CloudEvents subscription, want 1", len(d.Events))
			}
			return contentTypeCloudEvent, d.Events[0].JSON, nil
		}
		return contentTypeCloudEventBatch, jsonArray(d.Events, func(e *Event) ([]byte, error) { return e.JSON, nil }), nil
	case schemas.EventGridSchema:
		var rerr error
		body := jsonArray(d.Events, func(e *Event) ([]byte, error) {
			b, err := schemas.ToEventGrid(e.JSON)
			if err != nil && rerr == nil {
				rerr = fmt.Errorf("dispatch: render event %q in the Event Grid schema: %w", e.ID, err)
			}
			return b, err
		})
		if rerr != nil {
			return "", nil, rerr
		}
		return contentTypeEventGrid, body, nil
	default:
		return "", nil, fmt.Errorf("dispatch: render delivery: unknown delivery schema %q", d.Schema)
	}
}

// jsonArray joins the rendered events as a JSON array; it stops at the
// first render error.
func jsonArray(events []*Event, render func(*Event) ([]byte, error)) []byte {
	n := 2
	for _, e := range events {
		n += len(e.JSON) + 64 // room for the Event Grid schema's longer names
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range events {
		r, err := render(e)
		if err != nil {
			return nil
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}

// Result is what an attempt means for the events it carried.
type Result int

const (
	// Delivered: the endpoint answered 200–204.
	Delivered Result = iota
	// Retry: try again later (per the retry schedule) while the retry
	// policy allows.
	Retry
	// Fatal: retrying cannot help (400, 401, 403, 413; events that cannot
	// be rendered; a URL that cannot make a request): dead-letter at once.
	Fatal
)

func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Fatal:
		return "fatal"
	default:
		return "Result(" + strconv.Itoa(int(r)) + ")"
	}
}

// Outcome descriptions, as Event Grid names them in lastDeliveryOutcome
// ("Aborted" is sluice's: the attempt was cut short by shutdown).
const (
	OutcomeDelivered       = "Delivered"
	OutcomeBadRequest      = "BadRequest"
	OutcomeUnauthorized    = "Unauthorized"
	OutcomeForbidden       = "Forbidden"
	OutcomeNotFound        = "NotFound"
	OutcomePayloadTooLarge = "PayloadTooLarge"
	OutcomeBusy            = "Busy"
	OutcomeTimedOut        = "TimedOut"
	OutcomeGenericError    = "GenericError"
	OutcomeAborted         = "Aborted"
)

// Outcome is the result of one delivery attempt.
type Outcome struct {
	Result Result
	// Status is the HTTP status of the answer, 0 if there was none.
	Status   int
	Duration time.Duration
	// RetryAfter is the endpoint's Retry-After (seconds or an HTTP date)
	// on a 429 or 503, else 0.
	RetryAfter time.Duration
	// Description is Event Grid's name for the outcome (Outcome*
	// constants), as dead-letter records show it in lastDeliveryOutcome.
	Description string
	// Err says what went wrong, for logs; nil when delivered. It never
	// holds secret header values nor the endpoint URL's query string.
	Err error
}

// classifyStatus maps an answer's status code to a result and its description.
func classifyStatus(status int) (Result, string) {
	switch {
	case status >= 200 && status <= 204:
		return Delivered, OutcomeDelivered
	case status == http.StatusBadRequest:
		return Fatal, OutcomeBadRequest
	case status == http.StatusUnauthorized:
		return Fatal, OutcomeUnauthorized
	case status == http.StatusForbidden:
		return Fatal, OutcomeForbidden
	case status == http.StatusRequestEntityTooLarge:
		return Fatal, OutcomePayloadTooLarge
	case status == http.StatusNotFound:
		return Retry, OutcomeNotFound
	case status == http.StatusRequestTimeout:
		return Retry, OutcomeTimedOut
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return Retry, OutcomeBusy
	default:
		return Retry, OutcomeGenericError
	}
}

// Sender makes delivery requests. It is safe for concurrent use.
type Sender struct {
	Client *http.Client
	Log    zerolog.Logger
	// Now reads the time for Retry-After dates (nil: time.Now).
	Now func() time.Time
}

// NewSender returns a Sender whose client suits many concurrent deliveries
// to few hosts: up to 256 idle keep-alive connections per host, and no
// redirects followed (a 3xx is an answer like any other: retried).
func NewSender(log zerolog.Logger) *Sender {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return &Sender{
		Client: &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		Log: log,
	}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send makes one delivery attempt and classifies it. It returns once the
// request is over, after at most d.Timeout. If ctx ends
// first (shutdown), the outcome is Retry with Description OutcomeAborted
// and an Err that matches ctx's error: such an attempt need not count.
func (s *Sender) Send(ctx context.Context, d *Delivery) Outcome {
	start := time.Now()
	target := redactURL(d.URL)
	o := s.send(ctx, d, target)
	o.Duration = time.Since(start)

	ev := s.Log.Debug()
	if o.Err != nil {
		ev = ev.AnErr("error", o.Err)
	}
	ev.Str("topic", d.Topic).Str("subscription", d.Subscription).Str("url", target).
		Int("events", len(d.Events)).Int("attempt", d.Attempt+1).Int("status", o.Status).
		Str("result", o.Result.String()).Str("outcome", o.Description).Dur("duration", o.Duration).
		Msg("dispatch: delivery attempt")
	return o
}

func (s *Sender) send(ctx context.Context, d *Delivery, target string) Outcome {
	contentType, body, err := RenderBody(d)
	if err != nil {
		return Outcome{Result: Fatal, Description: OutcomeGenericError, Err: err}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDeliveryTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		// The URL cannot make a request, now or later.
		return Outcome{Result: Fatal, Description: OutcomeGenericError, Err: fmt.Errorf("dispatch: request to %s: %w", target, unwrapURLError(err))}
	}
	h := req.Header
	h.Set("Content-Type", contentType)
	h.Set("aeg-event-type", "Notification")
	h.Set("aeg-subscription-name", strings.ToUpper(d.Subscription))
	h.Set("aeg-delivery-count", strconv.Itoa(d.Attempt))
	h.Set("aeg-data-version", d.Events[0].DataVersion)
	h.Set("aeg-metadata-version", "1")
	if len(d.SigningSecrets) > 0 {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		if err := signatureHeaders(h, messageID(d.Events), now(), body, d.SigningSecrets); err != nil {
			return Outcome{Result: Fatal, Description: OutcomeGenericError, Err: err}
		}
	}
	for _, m := range d.Headers {
		switch m.Type {
		case schemas.DeliveryAttributeStatic:
			h.Set(m.Name, m.Properties.Value)
		case schemas.DeliveryAttributeDynamic:
			// A value that cannot be a header (control characters, or
			// longer than a mapping's value may be) is left out rather
			// than failing every attempt.
			if v, ok := dynamicValue(d.Events[0], m.Properties.SourceField); ok &&
				len(v) <= schemas.MaxDeliveryAttributeValueLength && isHeaderValue(v) {
				h.Set(m.Name, v)
			}
		}
	}

	resp, err := s.Client.Do(req)
	if err != nil {
		return s.failed(ctx, rctx, target, 0, err)
	}
	defer resp.Body.Close()
	o := Outcome{Status: resp.StatusCode}
	o.Result, o.Description = classifyStatus(resp.StatusCode)
	if o.Result != Delivered {
		o.Err = fmt.Errorf("dispatch: %s answered %d %s", target, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		o.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	// Read (a bounded part of) the answer: it lets the connection be
	// reused, and an endpoint that answers slower than the timeout has not
	// answered.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody)); err != nil && rctx.Err() != nil {
		f := s.failed(ctx, rctx, target, resp.StatusCode, err)
		f.RetryAfter = o.RetryAfter
		return f
	}
	return o
}

// failed classifies a request that got no (complete) answer.
func (s *Sender) failed(ctx, rctx context.Context, target string, status int, err error) Outcome {
	err = unwrapURLError(err)
	switch {
	case ctx.Err() != nil:
		return Outcome{Result: Retry, Status: status, Description: OutcomeAborted,
			Err: fmt.Errorf("dispatch: request to %s aborted: %w", target, ctx.Err())}
	case rctx.Err() != nil:
		return Outcome{Result: Retry, Status: status, Description: OutcomeTimedOut,
			Err: fmt.Errorf("dispatch: request to %s timed out: %w", target, rctx.Err())}
	default:
		return Outcome{Result: Retry, Status: status, Description: OutcomeGenericError,
			Err: fmt.Errorf("dispatch: request to %s: %w", target, err)}
	}
}

// unwrapURLError drops net/http's *url.Error wrapper, whose message holds
// the full URL (with any key in its query string).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL returns u without its query string, fragment or user info:
// webhook URLs often carry a key there (Azure Functions' ?code=).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP
// date. Anything else, or a time in the past, is 0; long ones are capped
// at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// dynamicValue is the value of a Dynamic delivery attribute mapping: the
// event's attribute sourceField (any top-level CloudEvents attribute or
// extension, or a "data.a.b" path into the data), as a string; ok is false
// when the event has no such string, number or boolean. The Event Grid
// schema's names for the core attributes (eventType, eventTime, topic,
// dataVersion) are accepted too, since Event Grid schema subscribers know
// their events by those.
func dynamicValue(e *Event, sourceField string) (string, bool) {
	switch sourceField {
	case ceID:
		return e.ID, true
	case ceSource, "topic":
		return e.Source, true
	case ceType, "eventType":
		return e.Type, true
	case ceSubject:
		return e.Subject, e.Subject != ""
	case ceTime:
		if v, ok := eventAttribute(e.JSON, ceTime); ok {
			return v, true
		}
		return e.Time.Format(time.RFC3339Nano), true
	case "eventTime":
		return e.Time.Format(time.RFC3339Nano), true
	case ceDataVersion, "dataVersion":
		return e.DataVersion, e.DataVersion != ""
	}
	return eventAttribute(e.JSON, sourceField)
}

// isHeaderValue reports whether s can be sent as a header value.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Batches splits events, in order, into the batches a subscription with
// these settings receives: at most maxEvents per batch (1–5000; 0: 1), and
// a batch stops growing once the next event would take it past
// preferredKB KiB of event JSON (0: 64), except that an event larger than
// that on its own is sent alone. The batches share events' array.
func Batches(events []*Event, maxEvents, preferredKB int) [][]*Event {
	if maxEvents <= 0 {
		maxEvents = schemas.DefaultMaxEventsPerBatch
	}
	maxEvents = min(maxEvents, schemas.MaxMaxEventsPerBatch)
	if preferredKB <= 0 {
		preferredKB = schemas.DefaultPreferredBatchSizeInKilobytes
	}
	limit := preferredKB << 10
	var out [][]*Event
	start, size := 0, 0
	for i, e := range events {
		n := len(e.JSON)
		if i > start && (i-start == maxEvents || size+n > limit) {
			out = append(out, events[start:i:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(events) {
		out = append(out, events[start:len(events):len(events)])
	}
	return out
}
