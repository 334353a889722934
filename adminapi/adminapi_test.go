package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
)

const token = "test-admin-token"

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	store *objectlog.Store
	logs  *syncBuffer
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	store, err := objectlog.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	reg := controlplane.New(store, nil)
	reg.Endpoint = func(topic string) string { return "http://sluice.test/topics/" + topic + "/api/events" }
	if _, _, err := reg.EnsureAdminToken(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := httptest.NewServer(NewHandler(reg, zerolog.New(logs).Level(zerolog.DebugLevel), opts))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: store, logs: logs}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// errorBody is Event Grid's error shape; decoding is strict so that a
// response in any other shape fails.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

func (r resp) errorBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an Event Grid error body: %q (%v)", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return e
}

// do sends a request with the admin token unless headers say otherwise
// ("Authorization": "" sends none).
func (e *env) do(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

func (e *env) expect(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

type topicOut struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties"`
	Etag       string         `json:"etag"`
}

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"wrong", "Bearer not-the-token"},
		{"wrong scheme", "Basic " + token},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/topics", "/api/topics/orders", "/api/nowhere"} {
				r := e.expect(e.do(http.MethodGet, path, nil, "Authorization", tc.header), 401)
				if got := r.errorBody(t).Error.Code; got != "Unauthorized" {
					t.Errorf("%s: code %q", path, got)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: no WWW-Authenticate", path)
				}
			}
		})
	}
	// Case-insensitive scheme.
	e.expect(e.do(http.MethodGet, "/api/topics", nil, "Authorization", "bearer "+token), 200)
}

func TestTopicLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	var lst struct{ Value []topicOut }
	e.expect(e.do(http.MethodGet, "/api/topics", nil), 200).json(t, &lst)
	if lst.Value == nil || len(lst.Value) != 0 {
		t.Errorf("empty list = %s", e.do(http.MethodGet, "/api/topics", nil).body)
	}

	r := e.expect(e.do(http.MethodPut, "/api/topics/orders", `{"properties":{"partitions":2}}`), 201)
	var created topicOut
	r.json(t, &created)
	if created.Name != "orders" || created.Etag == "" || r.header.Get("ETag") != `"`+created.Etag+`"` ||
		r.header.Get("Location") != "/api/topics/orders" ||
		created.Properties["endpoint"] != "http://sluice.test/topics/orders/api/events" ||
		created.Properties["partitions"] != 2.0 || created.Properties["provisioningState"] != "Succeeded" {
		t.Errorf("created: %s, headers %v", r.body, r.header)
	}

	// GET returns the same resource and etag.
	g := e.expect(e.do(http.MethodGet, "/api/topics/orders", nil), 200)
	if !bytes.Equal(g.body, r.body) || g.header.Get("ETag") != r.header.Get("ETag") {
		t.Errorf("GET %s (%s), PUT gave %s", g.body, g.header.Get("ETag"), r.body)
	}

	// Replace with If-Match (quoted, as the ETag header gives it): 200.
	r2 := e.expect(e.do(http.MethodPut, "/api/topics/orders", `{"name":"orders","properties":{"retentionInDays":3}}`,
		"If-Match", r.header.Get("ETag")), 200)
	var replaced topicOut
	r2.json(t, &replaced)
	if replaced.Etag == created.Etag || replaced.Properties["retentionInDays"] != 3.0 || replaced.Properties["partitions"] != 2.0 {
		t.Errorf("replaced: %s", r2.body)
	}
	// The same stale etag again: 412.
	st := e.expect(e.do(http.MethodPut, "/api/topics/orders", `{"properties":{"retentionInDays":4}}`, "If-Match", r.header.Get("ETag")), 412)
	if st.errorBody(t).Error.Code != "PreconditionFailed" {
		t.Errorf("stale If-Match: %s", st.body)
	}
	// Create only on an existing topic: 409.
	c := e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`, "If-None-Match", "*"), 409)
	if c.errorBody(t).Error.Code != "Conflict" {
		t.Errorf("If-None-Match: %s", c.body)
	}
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`, "If-None-Match", `"abc"`), 400)
	e.expect(e.do(http.MethodPut, "/api/topics/new-one", `{}`, "If-None-Match", "*"), 201)

	e.expect(e.do(http.MethodGet, "/api/topics", nil), 200).json(t, &lst)
	if len(lst.Value) != 2 || lst.Value[0].Name != "new-one" || lst.Value[1].Name != "orders" || lst.Value[1].Etag != replaced.Etag {
		t.Errorf("list: %+v", lst.Value)
	}

	// Keys.
	var keys struct{ Key1, Key2 string }
	e.expect(e.do(http.MethodPost, "/api/topics/orders/listKeys", nil), 200).json(t, &keys)
	if keys.Key1 == "" || keys.Key2 == "" {
		t.Errorf("keys: %+v", keys)
	}
	if strings.Contains(string(g.body), keys.Key1) {
		t.Error("GET shows a key")
	}
	var newKeys struct{ Key1, Key2 string }
	e.expect(e.do(http.MethodPost, "/api/topics/orders/regenerateKey", `{"keyName":"key2"}`), 200).json(t, &newKeys)
	if newKeys.Key1 != keys.Key1 || newKeys.Key2 == keys.Key2 {
		t.Errorf("regenerate key2: %+v -> %+v", keys, newKeys)
	}
	e.expect(e.do(http.MethodPost, "/api/topics/orders/regenerateKey", `{"keyName":"key3"}`), 400)
	e.expect(e.do(http.MethodPost, "/api/topics/orders/regenerateKey", `{"name":"key1"}`), 400)
	e.expect(e.do(http.MethodPost, "/api/topics/missing/listKeys", nil), 404)

	e.expect(e.do(http.MethodDelete, "/api/topics/orders", nil, "If-Match", r2.header.Get("ETag")), 400).errorBody(t)
	// Delete: 200, then 204; afterwards 404.
	e.expect(e.do(http.MethodDelete, "/api/topics/orders", nil), 200)
	e.expect(e.do(http.MethodDelete, "/api/topics/orders", nil), 204)
	nf := e.expect(e.do(http.MethodGet, "/api/topics/orders", nil), 404)
	if nf.errorBody(t).Error.Code != "NotFound" {
		t.Errorf("404 body: %s", nf.body)
	}
	// If-Match on a topic that does not exist: 412.
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`, "If-Match", r.header.Get("ETag")), 412)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{"properties":{"partitions":8}}`), 201)

	details := func(r resp) string {
		t.Helper()
		b := r.errorBody(t)
		if b.Error.Code != "BadRequest" {
			t.Errorf("code %q", b.Error.Code)
		}
		var parts []string
		for _, d := range b.Error.Details {
			parts = append(parts, d.Code+" "+d.Message)
		}
		return strings.Join(parts, "|")
	}
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"validation", http.MethodPut, "/api/topics/other", `{"properties":{"retentionInDays":5000,"inputSchema":"Nope"}}`,
			"InvalidField properties.inputSchema: "},
		{"unknown field", http.MethodPut, "/api/topics/other", `{"properties":{"partitionz":2}}`,
			"InvalidField properties.partitionz: unknown field"},
		{"wrong type", http.MethodPut, "/api/topics/other", `{"properties":{"partitions":"2"}}`,
			"InvalidField properties.partitions: must be an integer"},
		{"not JSON", http.MethodPut, "/api/topics/other", `{"properties":`, "invalid JSON"},
		{"name mismatch", http.MethodPut, "/api/topics/other", `{"name":"another"}`, "InvalidField name: \"another\" differs"},
		{"bad URL name", http.MethodPut, "/api/topics/a_b", `{}`, "InvalidField name: may contain only"},
		{"bad URL name on GET", http.MethodGet, "/api/topics/ab", ``, "InvalidField name: must be 3 to 50"},
		{"partitions changed", http.MethodPut, "/api/topics/orders", `{"properties":{"partitions":4}}`,
			"InvalidField properties.partitions: cannot change"},
		{"subscription field", http.MethodPut, "/api/topics/orders/eventSubscriptions/audit",
			`{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"ftp://x"}}}}`,
			"InvalidField properties.destination.properties.endpointUrl"},
		{"subscription name mismatch", http.MethodPut, "/api/topics/orders/eventSubscriptions/audit", `{"name":"other"}`,
			"InvalidField name:"},
		{"secrets flag", http.MethodGet, "/api/topics/orders/eventSubscriptions/audit?secrets=maybe", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := e.expect(e.do(tc.method, tc.path, body), 400)
			if got := details(r); !strings.Contains(got, tc.want) {
				t.Errorf("details %q lack %q", got, tc.want)
			}
		})
	}
	// Several problems: one detail each, all in the message.
	r := e.expect(e.do(http.MethodPut, "/api/topics/other", `{"properties":{"retentionInDays":5000,"inputSchema":"Nope"}}`), 400)
	b := r.errorBody(t)
	if len(b.Error.Details) != 2 || !strings.Contains(b.Error.Message, "properties.retentionInDays") || !strings.Contains(b.Error.Message, "properties.inputSchema") {
		t.Errorf("two problems: %s", r.body)
	}
	// Nothing was stored by the rejected requests.
	var lst struct{ Value []topicOut }
	e.expect(e.do(http.MethodGet, "/api/topics", nil), 200).json(t, &lst)
	if len(lst.Value) != 1 {
		t.Errorf("topics after rejected requests: %+v", lst.Value)
	}
}

func TestBodyLimitsAndMediaType(t *testing.T) {
	e := newEnv(t, Options{})
	big := `{"properties":{"inputSchema":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	r := e.expect(e.do(http.MethodPut, "/api/topics/orders", big), 413)
	if r.errorBody(t).Error.Code != "RequestEntityTooLarge" {
		t.Errorf("413 body: %s", r.body)
	}
	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/api/topics/orders", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d", res.StatusCode)
	}

	r = e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`, "Content-Type", "text/plain"), 415)
	if r.errorBody(t).Error.Code != "UnsupportedMediaType" {
		t.Errorf("415 body: %s", r.body)
	}
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`, "Content-Type", "application/json; charset=utf-8"), 201)
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.expect(e.do(http.MethodPatch, "/api/topics/orders", `{}`), 405)
	if r.errorBody(t).Error.Code != "MethodNotAllowed" {
		t.Errorf("405 body: %s", r.body)
	}
	e.expect(e.do(http.MethodGet, "/api/nowhere", nil), 404).errorBody(t)
	e.expect(e.do(http.MethodGet, "/elsewhere", nil), 404).errorBody(t)
	// The echo receiver is off by default.
	e.expect(e.do(http.MethodPost, "/dev/echo", `[]`), 404)
}

type subOut struct {
	Name       string `json:"name"`
	Topic      string `json:"topic"`
	Etag       string `json:"etag"`
	Properties struct {
		SigningSecret string `json:"signingSecret"`
		Destination   struct {
			Properties struct {
				DeliveryAttributeMappings []struct {
					Name       string `json:"name"`
					Properties struct {
						Value string `json:"value"`
					} `json:"properties"`
				} `json:"deliveryAttributeMappings"`
			} `json:"properties"`
		} `json:"destination"`
		EventDeliverySchema string   `json:"eventDeliverySchema"`
		Labels              []string `json:"labels"`
	} `json:"properties"`
}

const subBody = `{"properties":{"destination":{"endpointType":"WebHook","properties":{
	"endpointUrl":"https://hooks.example/audit",
	"deliveryAttributeMappings":[{"name":"X-Api-Key","type":"Static","properties":{"value":"hunter2","isSecret":true}}]}}}}`

func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/api/topics/orders/eventSubscriptions/audit"
	e.expect(e.do(http.MethodPut, path, subBody), 404)
	e.expect(e.do(http.MethodGet, "/api/topics/orders/eventSubscriptions", nil), 404)
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{"properties":{"inputSchema":"EventGridSchema"}}`), 201)

	r := e.expect(e.do(http.MethodPut, path, subBody), 201)
	var created subOut
	r.json(t, &created)
	secret := created.Properties.SigningSecret
	if created.Name != "audit" || created.Topic != "orders" || !strings.HasPrefix(secret, "whsec_") ||
		created.Properties.EventDeliverySchema != "EventGridSchema" ||
		r.header.Get("ETag") != `"`+created.Etag+`"` || r.header.Get("Location") != path {
		t.Errorf("created: %s %v", r.body, r.header)
	}

	g := e.expect(e.do(http.MethodGet, path, nil), 200)
	if strings.Contains(string(g.body), secret) || strings.Contains(string(g.body), "hunter2") {
		t.Errorf("GET shows secrets: %s", g.body)
	}
	if g.header.Get("ETag") != r.header.Get("ETag") {
		t.Errorf("ETag %s, PUT gave %s", g.header.Get("ETag"), r.header.Get("ETag"))
	}
	gs := e.expect(e.do(http.MethodGet, path+"?secrets=true", nil), 200)
	if !strings.Contains(string(gs.body), secret) || !strings.Contains(string(gs.body), "hunter2") {
		t.Errorf("GET ?secrets=true hides secrets: %s", gs.body)
	}

	// GET, edit, PUT back with If-Match: secrets are kept.
	var edited map[string]any
	g.json(t, &edited)
	edited["properties"].(map[string]any)["labels"] = []string{"edited"}
	r2 := e.expect(e.do(http.MethodPut, path, edited, "If-Match", g.header.Get("ETag")), 200)
	if strings.Contains(string(r2.body), secret) {
		t.Errorf("replace shows the secret: %s", r2.body)
	}
	var full subOut
	e.expect(e.do(http.MethodGet, path+"?secrets=1", nil), 200).json(t, &full)
	if full.Properties.SigningSecret != secret || full.Properties.Labels[0] != "edited" ||
		full.Properties.Destination.Properties.DeliveryAttributeMappings[0].Properties.Value != "hunter2" {
		t.Errorf("after PUT back: %+v", full)
	}
	// Stale etag: 412. Create only: 409.
	e.expect(e.do(http.MethodPut, path, edited, "If-Match", g.header.Get("ETag")), 412).errorBody(t)
	e.expect(e.do(http.MethodPut, path, subBody, "If-None-Match", "*"), 409).errorBody(t)

	e.expect(e.do(http.MethodPut, "/api/topics/orders/eventSubscriptions/billing", subBody), 201)
	var lst struct{ Value []subOut }
	e.expect(e.do(http.MethodGet, "/api/topics/orders/eventSubscriptions", nil), 200).json(t, &lst)
	if len(lst.Value) != 2 || lst.Value[0].Name != "audit" || lst.Value[1].Name != "billing" || lst.Value[0].Properties.SigningSecret != "" {
		t.Errorf("list: %+v", lst.Value)
	}

	e.expect(e.do(http.MethodDelete, path, nil), 200)
	e.expect(e.do(http.MethodDelete, path, nil), 204)
	e.expect(e.do(http.MethodGet, path, nil), 404).errorBody(t)
	// Deleting the topic deletes its subscriptions.
	e.expect(e.do(http.MethodDelete, "/api/topics/orders", nil), 200)
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`), 201)
	e.expect(e.do(http.MethodGet, "/api/topics/orders/eventSubscriptions", nil), 200).json(t, &lst)
	if len(lst.Value) != 0 {
		t.Errorf("recreated topic has subscriptions: %+v", lst.Value)
	}
}

// Store failures are 503 with Retry-After, and the cause is not leaked.
func TestStoreUnavailable(t *testing.T) {
	var down atomic.Bool
	fault := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{
		Hook: func(_ objectlog.Op, key string) error {
			if down.Load() && strings.HasPrefix(key, "config/topics/") {
				return fmt.Errorf("%w: injected SlowDown on %s", objectlog.ErrTransient, key)
			}
			return nil
		},
	})
	store := objectlog.NewStore(fault, objectlog.RetryPolicy{MaxAttempts: 1})
	reg := controlplane.New(store, nil)
	if _, _, err := reg.EnsureAdminToken(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := httptest.NewServer(NewHandler(reg, zerolog.New(logs), Options{}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, store: store, logs: logs}

	down.Store(true)
	r := e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`), 503)
	if r.errorBody(t).Error.Code != "ServiceUnavailable" || r.header.Get("Retry-After") != "1" {
		t.Errorf("503: %s %v", r.body, r.header)
	}
	if strings.Contains(string(r.body), "injected") {
		t.Errorf("the cause leaked: %s", r.body)
	}
	if !strings.Contains(logs.String(), "injected SlowDown") {
		t.Errorf("the cause was not logged: %s", logs.String())
	}
	down.Store(false)
	e.expect(e.do(http.MethodPut, "/api/topics/orders", `{}`), 201)
}

func TestSeekRejectsBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/api/topics/orders/eventSubscriptions/audit/seek"
	for _, c := range []struct{ body, want string }{
		{`{}`, `{"time":"<RFC 3339>"} or {"position":"earliest"}`},
		{`{"time":"yesterday"}`, `time "yesterday" is not an RFC 3339 time`},
		{`{"position":"middle"}`, `position "middle": want earliest or latest`},
		{`{"time":"2026-01-01T00:00:00Z","position":"latest"}`, "give time or position, not both"},
		{`{"offset":3}`, `unknown field "offset"`},
	} {
		r := e.expect(e.do(http.MethodPost, path, c.body), 400)
		var got struct{ Error struct{ Message string } }
		r.json(t, &got)
		if !strings.Contains(got.Error.Message, c.want) {
			t.Errorf("body %s: %q, want a message with %q", c.body, got.Error.Message, c.want)
		}
	}
	// Without the log (a server not given one) a valid request is 501.
	e.expect(e.do(http.MethodPost, path, `{"position":"latest"}`), 501)
}
