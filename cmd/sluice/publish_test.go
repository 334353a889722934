package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/oklog/ulid/v2"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/adminapi"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/objectlog"
)

const publishTestToken = "test-token"

// sluiceServer serves the real admin API and publish API over a directory
// store that tail can read too.
type sluiceServer struct {
	url   string
	store string // the store's URL, for --store
}

func newSluiceServer(t *testing.T) *sluiceServer {
	t.Helper()
	ctx := context.Background()
	storeURL := "file://" + t.TempDir()
	store, err := objectlog.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg := controlplane.New(store, time.Now)
	if _, _, err := reg.EnsureAdminToken(ctx, publishTestToken); err != nil {
		t.Fatal(err)
	}
	l, err := objectlog.NewLog(store, objectlog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ih, err := ingest.New(l, ingest.NewTopics(reg), ingest.DefaultConfig(), nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	ih.Routes(r)
	mux := http.NewServeMux()
	mux.Handle("/api/", adminapi.NewHandler(reg, zerolog.Nop(), adminapi.Options{}))
	mux.Handle("/topics/", r)
	srv := httptest.NewUnstartedServer(mux)
	base := "http://" + srv.Listener.Addr().String()
	reg.Endpoint = func(topic string) string { return base + "/topics/" + topic + "/api/events" }
	srv.Start()
	t.Cleanup(srv.Close)
	return &sluiceServer{url: srv.URL, store: storeURL}
}

// admin runs a command against s with the admin token.
func (s *sluiceServer) admin(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, append(args, "--server", s.url, "--token", publishTestToken)...)
}

// mustAdmin is admin for a command that must succeed.
func (s *sluiceServer) mustAdmin(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := s.admin(t, args...)
	if r.err != nil {
		t.Fatalf("sluice %s: %v\nstderr:\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

// tailJSON reads the whole topic with `sluice tail -o json`.
func (s *sluiceServer) tailJSON(t *testing.T, topic string) []map[string]any {
	t.Helper()
	r := runCLI(t, "tail", topic, "--store", s.store, "-o", "json")
	if r.err != nil {
		t.Fatalf("sluice tail: %v\nstderr:\n%s", r.err, r.stderr)
	}
	return jsonLines(t, r.stdout)
}

// jsonLines decodes stdout that must be one JSON object per line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var events []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not one JSON object per line: %v\n%s", err, out)
		}
		events = append(events, m)
	}
	return events
}

func byID(t *testing.T, events []map[string]any, id string) map[string]any {
	t.Helper()
	for _, e := range events {
		if e["id"] == id {
			return e
		}
	}
	t.Fatalf("no event with id %q in %v", id, events)
	return nil
}

// wrapped returns the events the CLI wrapped, by their data as JSON.
func wrapped(t *testing.T, events []map[string]any, typeMember string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, e := range events {
		if e[typeMember] != cliType {
			continue
		}
		if _, err := ulid.ParseStrict(e["id"].(string)); err != nil {
			t.Errorf("wrapped event id %v is not a ULID: %v", e["id"], err)
		}
		data, err := json.Marshal(e["data"])
		if err != nil {
			t.Fatal(err)
		}
		out[string(data)] = e
	}
	return out
}

func TestPublishCloudEventsAndTail(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders", "--partitions", "3")

	ce := `{"specversion":"1.0","id":"ce-1","source":"/test","type":"test.created","subject":"a/b","data":{"a":1}}`
	r := s.mustAdmin(t, "publish", "orders", `{"n":1}`, `"hello"`, ce, "--batch", "2")
	mustContain(t, "publish stderr", r.stderr, "published 3 events to orders in 2 requests")
	if r.stdout != "" {
		t.Errorf("publish wrote to stdout: %q", r.stdout)
	}

	events := s.tailJSON(t, "orders")
	if len(events) != 3 {
		t.Fatalf("tail: %d events, want 3: %v", len(events), events)
	}
	e := byID(t, events, "ce-1")
	if e["source"] != "/test" || e["type"] != "test.created" || e["subject"] != "a/b" || !jsonEqual(t, e["data"], `{"a":1}`) {
		t.Errorf("CloudEvent not intact: %v", e)
	}
	w := wrapped(t, events, "type")
	for _, data := range []string{`{"n":1}`, `"hello"`} {
		e, ok := w[data]
		if !ok {
			t.Errorf("no wrapped event with data %s in %v", data, events)
			continue
		}
		if e["specversion"] != "1.0" || e["source"] != cliSource || e["datacontenttype"] != "application/json" {
			t.Errorf("wrapped event %v: want specversion 1.0, source %s, datacontenttype application/json", e, cliSource)
		}
		if _, err := time.Parse(time.RFC3339Nano, e["time"].(string)); err != nil {
			t.Errorf("wrapped event time: %v", err)
		}
	}

	// The table shows the same events, one row each under a header.
	tr := runCLI(t, "tail", "orders", "--store", s.store)
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	lines := strings.Split(strings.TrimSpace(tr.stdout), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "PARTITION OFFSET TIME TYPE ID SOURCE SUBJECT" {
		t.Fatalf("table:\n%s", tr.stdout)
	}
	mustContain(t, "table", tr.stdout, "ce-1", "test.created", "/test", "a/b", cliType, cliSource)

	// -o json prints the summary as JSON, and only that, on stdout.
	r = s.mustAdmin(t, "publish", "orders", `{"n":2}`, "-o", "json")
	var sum struct{ Published, Requests int }
	decodeJSON(t, r.stdout, &sum)
	if sum.Published != 1 || sum.Requests != 1 {
		t.Errorf("publish -o json: %s", r.stdout)
	}
	if n := len(s.tailJSON(t, "orders")); n != 4 {
		t.Errorf("tail after second publish: %d events, want 4", n)
	}
}

func TestPublishEventGridFromStdinAndTail(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "legacy", "--input-schema", "EventGridSchema", "--partitions", "2")

	eg := `{"id":"eg-1","subject":"orders/1","eventType":"order.placed","eventTime":"2025-01-02T03:04:05Z","data":{"b":2},"dataVersion":"1"}`
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetIn(strings.NewReader(`{"x":1}` + "\n\n  \r\n" + eg + "\n" + `[1,2]`)) // blank lines, no final newline
	root.SetArgs([]string{"publish", "legacy", "-f", "-", "--server", s.url, "--token", publishTestToken})
	if err := root.Execute(); err != nil {
		t.Fatalf("publish: %v", err)
	}
	mustContain(t, "publish stderr", stderr.String(), "published 3 events to legacy in 1 request")

	events := s.tailJSON(t, "legacy")
	if len(events) != 3 {
		t.Fatalf("tail: %d events, want 3: %v", len(events), events)
	}
	if e := byID(t, events, "eg-1"); !jsonEqual(t, e["data"], `{"b":2}`) {
		t.Errorf("Event Grid event not intact: %v", e)
	}
	// Stored as Event Grid or as CloudEvents events: either way the
	// wrapped ones keep their data and the CLI's event type.
	typeMember := "eventType"
	if _, ok := events[0]["type"]; ok {
		typeMember = "type"
	}
	w := wrapped(t, events, typeMember)
	for _, data := range []string{`{"x":1}`, `[1,2]`} {
		if _, ok := w[data]; !ok {
			t.Errorf("no wrapped event with data %s in %v", data, events)
		}
	}
}

func TestPublishBadLineSendsNothing(t *testing.T) {
	s := newSluiceServer(t)
	s.mustAdmin(t, "topic", "create", "orders")
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(file, []byte("{\"ok\":1}\n\n{\"broken\":\n{\"ok\":2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.admin(t, "publish", "orders", "-f", file)
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error", r.err.Error(), file+" line 3", "nothing was published")

	r = s.admin(t, "publish", "orders", `{"ok":1}`, "hello")
	if r.err == nil {
		t.Fatal("no error for a non-JSON argument")
	}
	mustContain(t, "error", r.err.Error(), "event argument 2 is not a JSON value", `'"hello"'`)

	tr := runCLI(t, "tail", "orders", "--store", s.store, "-o", "json")
	if tr.err != nil || tr.stdout != "" {
		t.Fatalf("tail after failed publishes: err %v, stdout %q", tr.err, tr.stdout)
	}
	mustContain(t, "tail stderr", tr.stderr, "no events in orders")
}

func TestPublishUnknownTopic(t *testing.T) {
	s := newSluiceServer(t)
	r := s.admin(t, "publish", "nosuchtopic", `{"a":1}`)
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error", r.err.Error(), `topic "nosuchtopic" does not exist`)
}

func TestPublishKeyAndToken(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(clientEnvToken, "")
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders")
	keys := struct{ Key1, Key2 string }{}
	decodeJSON(t, s.mustAdmin(t, "topic", "keys", "orders", "-o", "json").stdout, &keys)

	// Neither a key nor the admin token.
	r := runCLI(t, "publish", "orders", `{"a":1}`, "--server", s.url)
	if r.err == nil {
		t.Fatal("no error without key or token")
	}
	mustContain(t, "error", r.err.Error(), "no topic key", "--key", "$"+envTopicKey, "--token", "$"+clientEnvToken)

	// A key but no token: the schema must be given.
	r = runCLI(t, "publish", "orders", `{"a":1}`, "--server", s.url, "--key", keys.Key2)
	if r.err == nil {
		t.Fatal("no error without schema")
	}
	mustContain(t, "error", r.err.Error(), "input schema of topic orders is unknown", "--schema", "--token")

	// A key and the schema: no admin API needed.
	t.Setenv(envTopicKey, keys.Key2)
	r = runCLI(t, "publish", "orders", `{"a":1}`, "--server", s.url, "--schema", "CloudEventSchemaV1_0")
	if r.err != nil {
		t.Fatalf("publish with key: %v", r.err)
	}

	// A wrong key: the server's message and what to check.
	r = runCLI(t, "publish", "orders", `{"a":2}`, "--server", s.url, "--schema", "CloudEventSchemaV1_0", "--key", "wrong")
	if r.err == nil {
		t.Fatal("no error with a wrong key")
	}
	mustContain(t, "error", r.err.Error(), "topic key is not valid", "check --key", "published before it: nothing")

	// A --schema that contradicts the topic.
	r = s.admin(t, "publish", "orders", `{"a":3}`, "--schema", "EventGridSchema")
	if r.err == nil {
		t.Fatal("no error with a contradicting --schema")
	}
	mustContain(t, "error", r.err.Error(), "topic orders takes CloudEventSchemaV1_0 events")

	if n := len(s.tailJSON(t, "orders")); n != 1 {
		t.Errorf("tail: %d events, want 1", n)
	}
}

func TestPublishRejectedBatch(t *testing.T) {
	s := newSluiceServer(t)
	t.Setenv(envTopicKey, "")
	s.mustAdmin(t, "topic", "create", "orders")
	// The third event is a CloudEvent without id or source: the server refuses its batch.
	r := s.admin(t, "publish", "orders", `{"a":1}`, `{"a":2}`, `{"specversion":"1.0","type":"x"}`, `{"a":4}`, `{"a":5}`, "--batch", "2", "-o", "json")
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error", r.err.Error(), "publish batch 2 of 3 (events 3–4)", "published before it: events 1–2 in 1 request; not sent: event 5")
	var sum struct{ Published, Requests int }
	decodeJSON(t, r.stdout, &sum)
	if sum.Published != 2 || sum.Requests != 1 {
		t.Errorf("publish -o json: %s", r.stdout)
	}
	if n := len(s.tailJSON(t, "orders")); n != 2 {
		t.Errorf("tail: %d events, want the first batch's 2", n)
	}
}

func TestPublishFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", "orders"}, "no events"},
		{[]string{"publish", "orders", "{}", "-f", "x"}, "not both"},
		{[]string{"publish", "orders", "{}", "--batch", "0"}, "--batch 0: want 1–5000"},
		{[]string{"publish", "orders", "{}", "--batch", "5001"}, "--batch 5001"},
		{[]string{"publish", "orders", "{}", "--schema", "Custom"}, `--schema "Custom"`},
		{[]string{"publish", "orders", "-f", filepath.Join(t.TempDir(), "missing.jsonl")}, "missing.jsonl"},
	} {
		r := runCLI(t, tc.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("sluice %s: error %v, want one containing %q", strings.Join(tc.args, " "), r.err, tc.want)
		}
	}
}

func jsonEqual(t *testing.T, got any, want string) bool {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(w)
	return bytes.Equal(a, b)
}
