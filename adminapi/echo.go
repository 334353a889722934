package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/apierr"
)

// The development echo receiver: a webhook endpoint to point subscriptions
// at while trying sluice out. It logs what it receives, answers Event
// Grid's validation handshake and CloudEvents' abuse-protection preflight,
// and keeps the last echoRingSize requests for GET /dev/echo.

const (
	// echoBodyBytes is how much of a body is logged and kept.
	echoBodyBytes = 64 << 10
	// echoRingSize is how many requests GET /dev/echo returns.
	echoRingSize = 100
	// validationEventType is the Event Grid handshake's event type.
	validationEventType = "Microsoft.EventGrid.SubscriptionValidationEvent"
	redacted            = "<redacted>"
)

// EchoedRequest is one request the echo receiver got.
type EchoedRequest struct {
	Time    time.Time         `json:"time"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// BodyTruncated: the body was longer than 64 KiB; Body is its start.
	BodyTruncated bool `json:"bodyTruncated,omitempty"`
}

type echo struct {
	log zerolog.Logger
	mu  struct {
		sync.Mutex
		// ring holds the last requests; next is where the next one goes.
		ring [echoRingSize]EchoedRequest
		next int
		n    int
	}
}

func newEcho(log zerolog.Logger) *echo { return &echo{log: log} }

// secretName reports whether a header or query parameter probably carries
// a credential: its value is neither logged nor kept.
func secretName(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "aeg-sas-") || n == "code" || n == "sig" {
		return true
	}
	for _, s := range []string{"authorization", "cookie", "secret", "token", "password", "key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func (e *echo) record(r *http.Request, body []byte, truncated bool) EchoedRequest {
	req := EchoedRequest{
		Time:          time.Now().UTC(),
		Method:        r.Method,
		Path:          r.URL.Path,
		Headers:       make(map[string]string, len(r.Header)),
		Body:          string(body),
		BodyTruncated: truncated,
	}
	for name, values := range r.Header {
		v := strings.Join(values, ", ")
		if secretName(name) {
			v = redacted
		}
		req.Headers[name] = v
	}
	if q := r.URL.Query(); len(q) > 0 {
		for name := range q {
			if secretName(name) {
				q[name] = []string{redacted}
			}
		}
		req.Query, _ = url.QueryUnescape(q.Encode())
	}
	e.mu.Lock()
	e.mu.ring[e.mu.next] = req
	e.mu.next = (e.mu.next + 1) % echoRingSize
	if e.mu.n < echoRingSize {
		e.mu.n++
	}
	e.mu.Unlock()
	e.log.Info().Str("method", req.Method).Str("path", req.Path).Str("query", req.Query).
		Interface("headers", req.Headers).Str("body", req.Body).Bool("bodyTruncated", truncated).
		Msg("dev echo: received")
	return req
}

// receive logs a delivery and answers 200, or the validation handshake.
func (e *echo) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, echoBodyBytes+1))
	truncated := len(body) > echoBodyBytes
	if truncated {
		body = body[:echoBodyBytes]
		// Drain the rest (bounded) so the connection can be reused.
		_, err = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	}
	var mbe *http.MaxBytesError
	if err != nil && !errors.As(err, &mbe) {
		err = apierr.BadRequest("", "cannot read the request body").WithCause(err)
	}
	if err != nil {
		apierr.Write(w, r, e.log, err)
		return
	}
	e.record(r, body, truncated)

	if code, ok := validationCode(body); ok {
		writeJSON(w, http.StatusOK, map[string]string{"validationResponse": code})
		return
	}
	// ?status=NNN answers with that status, to watch retries and dead
	// letters happen without writing a receiver.
	if s := r.URL.Query().Get("status"); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil || code < 200 || code > 599 {
			apierr.Write(w, r, e.log, apierr.BadRequest("status", fmt.Sprintf("status=%q: want an HTTP status code from 200 to 599", s)))
			return
		}
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// validationCode finds the code of an Event Grid validation handshake:
// a JSON array whose first event is a SubscriptionValidationEvent.
func validationCode(body []byte) (string, bool) {
	var events []struct {
		EventType string `json:"eventType"`
		Data      struct {
			ValidationCode string `json:"validationCode"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &events) != nil || len(events) == 0 || events[0].EventType != validationEventType {
		return "", false
	}
	return events[0].Data.ValidationCode, true
}

// abuseProtection answers the CloudEvents webhook validation preflight
// (CloudEvents HTTP webhook spec, section 4): it allows the requesting
// origin, at any rate.
func (e *echo) abuseProtection(w http.ResponseWriter, r *http.Request) {
	e.record(r, nil, false)
	h := w.Header()
	h.Set("Allow", "POST, OPTIONS")
	if origin := r.Header.Get("WebHook-Request-Origin"); origin != "" {
		h.Set("WebHook-Allowed-Origin", origin)
	}
	if r.Header.Get("WebHook-Request-Rate") != "" {
		h.Set("WebHook-Allowed-Rate", "*")
	}
	w.WriteHeader(http.StatusOK)
}

// list returns the kept requests, oldest first, as {"value":[…]}.
func (e *echo) list(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	out := make([]EchoedRequest, 0, e.mu.n)
	start := (e.mu.next - e.mu.n + echoRingSize) % echoRingSize
	for i := 0; i < e.mu.n; i++ {
		out = append(out, e.mu.ring[(start+i)%echoRingSize])
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, list[EchoedRequest]{Value: out})
}
