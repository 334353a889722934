package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/schemas"
)

// storedEvent returns a stored-form event: published as a CloudEvent and
// canonicalised by schemas, as ingest would, then parsed.
func storedEvent(t testing.TB, id string, extra string) *Event {
	t.Helper()
	raw := `{"specversion":"1.0","id":"` + id + `","source":"/orders","type":"Order.Created","subject":"orders/` + id +
		`","time":"2025-01-02T15:04:05Z","datacontenttype":"application/json"` + extra + `,"data":{"system":"crm","n":7}}`
	ce, err := schemas.ParseCloudEvent([]byte(raw))
	if err != nil {
		t.Fatalf("test event %s: %v", id, err)
	}
	e, err := ParseEvent(ce.JSON)
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestRenderBody(t *testing.T) {
	e1, e2 := storedEvent(t, "e1", `,"dataversion":"2.0"`), storedEvent(t, "e2", "")
	eg := func(e *Event) string {
		b, err := schemas.ToEventGrid(e.JSON)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name     string
		d        Delivery
		wantType string
		wantBody string
		wantErr  string
	}{
		{"CloudEvents single", Delivery{Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{e1}},
			"application/cloudevents+json", string(e1.JSON), ""},
		{"CloudEvents batch of one", Delivery{Schema: schemas.CloudEventSchemaV1_0, Batched: true, Events: []*Event{e1}},
			"application/cloudevents-batch+json", "[" + string(e1.JSON) + "]", ""},
		{"CloudEvents batch", Delivery{Schema: schemas.CloudEventSchemaV1_0, Batched: true, Events: []*Event{e1, e2}},
			"application/cloudevents-batch+json", "[" + string(e1.JSON) + "," + string(e2.JSON) + "]", ""},
		{"Event Grid one event is still an array", Delivery{Schema: schemas.EventGridSchema, Events: []*Event{e1}},
			"application/json", "[" + eg(e1) + "]", ""},
		{"Event Grid batch", Delivery{Schema: schemas.EventGridSchema, Batched: true, Events: []*Event{e1, e2}},
			"application/json", "[" + eg(e1) + "," + eg(e2) + "]", ""},
		{"CloudEvents unbatched with two events", Delivery{Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{e1, e2}},
			"", "", "2 events for an unbatched"},
		{"no events", Delivery{Schema: schemas.CloudEventSchemaV1_0}, "", "", "no events"},
		{"unknown schema", Delivery{Schema: "CustomInputSchema", Events: []*Event{e1}}, "", "", `unknown delivery schema "CustomInputSchema"`},
		{"event without time", Delivery{Schema: schemas.EventGridSchema, Events: []*Event{{ID: "x", JSON: []byte(`{"id":"x","source":"s","type":"t"}`)}}},
			"", "", "Event Grid schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body, err := RenderBody(&tc.d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ct != tc.wantType || string(body) != tc.wantBody {
				t.Errorf("got %s\n%s\nwant %s\n%s", ct, body, tc.wantType, tc.wantBody)
			}
		})
	}
}

// hookRequest is what a test receiver saw.
type hookRequest struct {
	header http.Header
	body   []byte
}

// hookServer is an httptest server on 127.0.0.1 that records requests and
// answers with handle.
func hookServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []hookRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []hookRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, hookRequest{r.Header.Clone(), body})
		mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookRequest(nil), got...)
	}
}

func answer(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// newLoggingSender returns a Sender that logs everything to a buffer.
func newLoggingSender(t *testing.T) (*Sender, *bytes.Buffer) {
	var logs bytes.Buffer
	return NewSender(zerolog.New(&logs).Level(zerolog.TraceLevel)), &logs
}

const testSecret = "s3cr3t-header-value"

func TestSendHeadersAndBody(t *testing.T) {
	for _, schema := range []string{schemas.CloudEventSchemaV1_0, schemas.EventGridSchema} {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batched=%v", schema, batched), func(t *testing.T) {
				srv, got := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/fail" {
						w.WriteHeader(http.StatusInternalServerError)
					}
				})
				s, logs := newLoggingSender(t)
				events := []*Event{storedEvent(t, "e1", `,"dataversion":"2.0","tenant":"acme","priority":3`)}
				if batched {
					events = append(events, storedEvent(t, "e2", ""))
				}
				d := &Delivery{
					URL: srv.URL + "/hook?code=querykey", Schema: schema, Batched: batched,
					Topic: "orders", Subscription: "Audit-Sub", Events: events, Attempt: 3,
					Headers: []schemas.DeliveryAttributeMapping{
						{Name: "X-Static", Type: schemas.DeliveryAttributeStatic, Properties: schemas.DeliveryAttributeProperties{Value: "plain"}},
						{Name: "Authorization", Type: schemas.DeliveryAttributeStatic, Properties: schemas.DeliveryAttributeProperties{Value: testSecret, IsSecret: true}},
						{Name: "X-Id", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "id"}},
						{Name: "X-Type", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "eventType"}},
						{Name: "X-Tenant", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "tenant"}},
						{Name: "X-Priority", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "priority"}},
						{Name: "X-System", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "data.system"}},
						{Name: "X-Missing", Type: schemas.DeliveryAttributeDynamic, Properties: schemas.DeliveryAttributeProperties{SourceField: "nosuch"}},
					},
				}
				o := s.Send(context.Background(), d)
				if o.Result != Delivered || o.Status != 200 || o.Description != OutcomeDelivered || o.Err != nil {
					t.Fatalf("outcome %+v", o)
				}
				reqs := got()
				if len(reqs) != 1 {
					t.Fatalf("%d requests", len(reqs))
				}
				h := reqs[0].header
				wantType := map[string]string{
					schemas.CloudEventSchemaV1_0: "application/cloudevents+json",
					schemas.EventGridSchema:      "application/json",
				}[schema]
				if schema == schemas.CloudEventSchemaV1_0 && batched {
					wantType = "application/cloudevents-batch+json"
				}
				for name, want := range map[string]string{
					"Content-Type":          wantType,
					"aeg-event-type":        "Notification",
					"aeg-subscription-name": "AUDIT-SUB",
					"aeg-delivery-count":    "3",
					"aeg-data-version":      "2.0",
					"aeg-metadata-version":  "1",
					"X-Static":              "plain",
					"Authorization":         testSecret,
					"X-Id":                  "e1",
					"X-Type":                "Order.Created",
					"X-Tenant":              "acme",
					"X-Priority":            "3",
					"X-System":              "crm",
				} {
					if vs := h.Values(name); len(vs) != 1 || vs[0] != want {
						t.Errorf("header %s: %q, want %q", name, vs, want)
					}
				}
				if _, ok := h["X-Missing"]; ok {
					t.Errorf("X-Missing sent for an attribute the event lacks")
				}
				checkDeliveredBody(t, schema, batched, reqs[0].body, len(events))

				// A failed attempt logs its error; neither its logs nor its
				// outcome may show the secret or the URL's query.
				d.URL = srv.URL + "/fail?code=querykey"
				o = s.Send(context.Background(), d)
				if o.Result != Retry || o.Status != http.StatusInternalServerError {
					t.Fatalf("outcome %+v", o)
				}
				for what, text := range map[string]string{"logs": logs.String(), "outcome": fmt.Sprintf("%+v %v", o, o.Err)} {
					if strings.Contains(text, testSecret) || strings.Contains(text, "querykey") {
						t.Errorf("%s show a secret:\n%s", what, text)
					}
				}
				if !strings.Contains(logs.String(), "delivery attempt") {
					t.Errorf("no delivery log:\n%s", logs.String())
				}
			})
		}
	}
}

// checkDeliveredBody parses a delivered body as its schema says it must be.
func checkDeliveredBody(t *testing.T, schema string, batched bool, body []byte, n int) {
	t.Helper()
	switch {
	case schema == schemas.EventGridSchema:
		evs, err := schemas.ParseEventGridEvents(body, "/orders") // the source, as the topic
		if err != nil || len(evs) != n {
			t.Fatalf("Event Grid body: %d events, %v\n%s", len(evs), err, body)
		}
		var raw []map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw[0]["topic"] != "/orders" || raw[0]["eventType"] != "Order.Created" || raw[0]["dataVersion"] != "2.0" || raw[0]["metadataVersion"] != "1" {
			t.Errorf("Event Grid event: %v", raw[0])
		}
	case batched:
		evs, err := schemas.ParseCloudEventBatch(body)
		if err != nil || len(evs) != n {
			t.Fatalf("CloudEvents batch body: %d events, %v\n%s", len(evs), err, body)
		}
	default:
		ev, err := schemas.ParseCloudEvent(body)
		if err != nil || ev.ID != "e1" {
			t.Fatalf("CloudEvent body: %v\n%s", err, body)
		}
	}
}

func TestSendStatusClasses(t *testing.T) {
	srv, _ := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/"), &code)
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/200")
		}
		w.WriteHeader(code)
	})
	s, _ := newLoggingSender(t)
	for _, tc := range []struct {
		status int
		result Result
		desc   string
	}{
		{200, Delivered, OutcomeDelivered},
		{201, Delivered, OutcomeDelivered},
		{202, Delivered, OutcomeDelivered},
		{203, Delivered, OutcomeDelivered},
		{204, Delivered, OutcomeDelivered},
		{205, Retry, OutcomeGenericError},
		{206, Retry, OutcomeGenericError},
		{301, Retry, OutcomeGenericError}, // redirects are not followed
		{302, Retry, OutcomeGenericError},
		{307, Retry, OutcomeGenericError},
		{400, Fatal, OutcomeBadRequest},
		{401, Fatal, OutcomeUnauthorized},
		{403, Fatal, OutcomeForbidden},
		{413, Fatal, OutcomePayloadTooLarge},
		{404, Retry, OutcomeNotFound},
		{408, Retry, OutcomeTimedOut},
		{410, Retry, OutcomeGenericError},
		{429, Retry, OutcomeBusy},
		{500, Retry, OutcomeGenericError},
		{502, Retry, OutcomeGenericError},
		{503, Retry, OutcomeBusy},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			o := s.Send(context.Background(), &Delivery{URL: fmt.Sprintf("%s/%d", srv.URL, tc.status),
				Schema: schemas.CloudEventSchemaV1_0, Subscription: "s", Events: []*Event{storedEvent(t, "e1", "")}})
			if o.Result != tc.result || o.Status != tc.status || o.Description != tc.desc {
				t.Errorf("got %v %d %q, want %v %d %q", o.Result, o.Status, o.Description, tc.result, tc.status, tc.desc)
			}
			if (o.Err == nil) != (tc.result == Delivered) {
				t.Errorf("Err %v for %v", o.Err, o.Result)
			}
			if o.Duration <= 0 {
				t.Errorf("duration %v", o.Duration)
			}
		})
	}
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, _ := newLoggingSender(t)
	o := s.Send(context.Background(), &Delivery{URL: "http://" + addr + "/hook?code=querykey",
		Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}})
	if o.Result != Retry || o.Status != 0 || o.Description != OutcomeGenericError || o.Err == nil {
		t.Fatalf("outcome %+v", o)
	}
	if strings.Contains(o.Err.Error(), "querykey") {
		t.Errorf("error shows the URL's query: %v", o.Err)
	}
}

func TestSendFatalWithoutRequest(t *testing.T) {
	srv, got := hookServer(t, answer(200))
	s, _ := newLoggingSender(t)
	for name, d := range map[string]*Delivery{
		"unknown schema": {URL: srv.URL, Schema: "nope", Events: []*Event{storedEvent(t, "e1", "")}},
		"bad URL":        {URL: "http://127.0.0.1:1/\x7f\x00", Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}},
	} {
		if o := s.Send(context.Background(), d); o.Result != Fatal || o.Err == nil {
			t.Errorf("%s: outcome %+v", name, o)
		}
	}
	if len(got()) != 0 {
		t.Errorf("%d requests made", len(got()))
	}
}

func TestSendRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"429 seconds", 429, "120", 2 * time.Minute},
		{"503 seconds", 503, "7", 7 * time.Second},
		{"429 HTTP date", 429, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"503 HTTP date", 503, now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"date in the past", 503, now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"capped", 429, "999999999", 24 * time.Hour},
		{"negative", 429, "-5", 0},
		{"garbage", 429, "soon", 0},
		{"absent", 503, "", 0},
		{"ignored on 500", 500, "120", 0},
		{"ignored on 200", 200, "120", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := hookServer(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
			})
			s, _ := newLoggingSender(t)
			s.Now = func() time.Time { return now }
			o := s.Send(context.Background(), &Delivery{URL: srv.URL, Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}})
			if o.RetryAfter != tc.want {
				t.Errorf("RetryAfter %v, want %v", o.RetryAfter, tc.want)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	s, _ := newLoggingSender(t)
	for _, path := range []string{"/no-answer", "/slow-body"} {
		t.Run(path, func(t *testing.T) {
			o := s.Send(context.Background(), &Delivery{URL: srv.URL + path, Timeout: 100 * time.Millisecond,
				Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}})
			if o.Result != Retry || o.Description != OutcomeTimedOut || !errors.Is(o.Err, context.DeadlineExceeded) {
				t.Errorf("outcome %+v", o)
			}
			if o.Duration < 100*time.Millisecond || o.Duration > 10*time.Second {
				t.Errorf("took %v with a 100ms timeout", o.Duration)
			}
		})
	}
}

func TestSendAborted(t *testing.T) {
	arrived := make(chan struct{})
	srv, _ := hookServer(t, func(_ http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	s, _ := newLoggingSender(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	o := s.Send(ctx, &Delivery{URL: srv.URL, Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}})
	if o.Result != Retry || o.Description != OutcomeAborted || !errors.Is(o.Err, context.Canceled) {
		t.Errorf("outcome %+v", o)
	}
}

func TestSendReusesConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv, _ := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		w.Write(bytes.Repeat([]byte("x"), 1000)) // a body to drain
	})
	s, _ := newLoggingSender(t)
	for range 20 {
		if o := s.Send(context.Background(), &Delivery{URL: srv.URL, Schema: schemas.CloudEventSchemaV1_0, Events: []*Event{storedEvent(t, "e1", "")}}); o.Result != Delivered {
			t.Fatalf("outcome %+v", o)
		}
	}
	if len(conns) != 1 {
		t.Errorf("20 sequential deliveries used %d connections, want 1", len(conns))
	}
}

func TestBatches(t *testing.T) {
	sized := func(sizes ...int) []*Event {
		var out []*Event
		for _, n := range sizes {
			out = append(out, &Event{JSON: bytes.Repeat([]byte("x"), n)})
		}
		return out
	}
	shape := func(bs [][]*Event) []int {
		var out []int
		for _, b := range bs {
			out = append(out, len(b))
		}
		return out
	}
	for _, tc := range []struct {
		name                   string
		events                 []*Event
		maxEvents, preferredKB int
		want                   []int
	}{
		{"defaults: one per batch", sized(10, 10, 10), 0, 0, []int{1, 1, 1}},
		{"none", nil, 10, 64, nil},
		{"max events", sized(1, 1, 1, 1, 1, 1, 1), 3, 64, []int{3, 3, 1}},
		{"size stops growth", sized(600, 600, 600, 600), 10, 1, []int{1, 1, 1, 1}},
		{"size exactly at the limit", sized(512, 512, 512, 512), 10, 1, []int{2, 2}},
		{"oversized event alone", sized(100, 5000, 100, 100), 10, 1, []int{1, 1, 2}},
		{"oversized event first", sized(5000, 100), 10, 1, []int{1, 1}},
		{"max capped at 5000", sized(make([]int, 6000)...), 10000, 1024, []int{5000, 1000}},
		{"default size 64 KiB", sized(40<<10, 30<<10, 20<<10), 10, 0, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := Batches(tc.events, tc.maxEvents, tc.preferredKB)
			if got := shape(bs); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("batch sizes %v, want %v", got, tc.want)
			}
			var flat []*Event
			for _, b := range bs {
				flat = append(flat, b...)
			}
			for i := range flat {
				if flat[i] != tc.events[i] {
					t.Fatalf("event %d out of order", i)
				}
			}
			if len(bs) > 1 {
				// Appending to a batch must not overwrite the next one.
				_ = append(bs[0], &Event{})
				if bs[1][0] != tc.events[len(bs[0])] {
					t.Error("batches share capacity")
				}
			}
		})
	}
}
