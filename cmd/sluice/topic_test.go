package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/adminapi"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

const testAdminToken = "sla_test-admin-token"

// adminServer is the real admin API over an in-memory store.
type adminServer struct {
	url string
}

func newAdminServer(t *testing.T) *adminServer {
	t.Helper()
	ctx := context.Background()
	store, err := objectlog.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg := controlplane.New(store, time.Now)
	reg.Endpoint = func(topic string) string { return "http://sluice.test/topics/" + topic + "/api/events" }
	if _, _, err := reg.EnsureAdminToken(ctx, testAdminToken); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(adminapi.NewHandler(reg, zerolog.Nop(), adminapi.Options{}))
	t.Cleanup(srv.Close)
	return &adminServer{url: srv.URL}
}

// cliResult is what one run of the CLI printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCLI runs the sluice command line in-process with args, as main does
// but returning the error main would print as "sluice: <err>" (exit 1).
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// run runs a command against s with the admin token.
func (s *adminServer) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, append(args, "--server", s.url, "--token", testAdminToken)...)
}

// ok runs a command that must succeed and returns its standard output.
func (s *adminServer) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, args...)
	if r.err != nil {
		t.Fatalf("sluice %s: %v\nstdout:\n%s", strings.Join(args, " "), r.err, r.stdout)
	}
	return r.stdout
}

// fail runs a command that must fail and returns its error text.
func (s *adminServer) fail(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, args...)
	if r.err == nil {
		t.Fatalf("sluice %s: no error; stdout:\n%s", strings.Join(args, " "), r.stdout)
	}
	return r.err.Error()
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func decodeJSON(t *testing.T, data string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", data)
	}
}

func TestTopicCreateListShowDelete(t *testing.T) {
	s := newAdminServer(t)

	out := s.ok(t, "topic", "create", "orders", "--partitions", "8", "--retention-days", "3")
	mustContain(t, "create output", out,
		"name:", "orders", "partitions:", "8", "retention:", "3 days",
		"endpoint:", "http://sluice.test/topics/orders/api/events", "state:", "Succeeded", "etag:",
		"key1:", "key2:", "aeg-sas-key:", "application/cloudevents-batch+json")
	keys := topicKeys(t, s, "orders")
	mustContain(t, "create output", out, keys.Key1, keys.Key2)

	// Create only: a second create is refused, and says why.
	msg := s.fail(t, "topic", "create", "orders")
	mustContain(t, "second create error", msg, "already exists")

	s.ok(t, "topic", "create", "payments", "--input-schema", schemas.EventGridSchema)

	out = s.ok(t, "topic", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("topic list: want a header and 2 rows:\n%s", out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME SCHEMA PARTITIONS RETENTION ENDPOINT" {
		t.Errorf("topic list header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "orders" || f[1] != schemas.CloudEventSchemaV1_0 || f[2] != "8" ||
		f[3] != "3d" || f[4] != "http://sluice.test/topics/orders/api/events" {
		t.Errorf("topic list row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 5 || f[0] != "payments" || f[1] != schemas.EventGridSchema || f[2] != "4" || f[3] != "7d" {
		t.Errorf("topic list row %q", lines[2])
	}

	out = s.ok(t, "topic", "show", "payments")
	mustContain(t, "topic show", out, "name:", "payments", "inputSchema:", schemas.EventGridSchema, "partitions:", "4", "retention:", "7 days", "created:")

	out = s.ok(t, "topic", "delete", "payments")
	mustContain(t, "topic delete", out, "Deleted topic payments")
	out = s.ok(t, "topic", "delete", "payments")
	mustContain(t, "second topic delete", out, "does not exist; nothing deleted")
	msg = s.fail(t, "topic", "show", "payments")
	mustContain(t, "show of a deleted topic", msg, `topic "payments" does not exist`)

	out = s.ok(t, "topic", "list")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
		t.Errorf("topic list after delete: want a header and 1 row:\n%s", out)
	}
	s.ok(t, "topic", "delete", "orders")
	out = s.ok(t, "topic", "list")
	mustContain(t, "empty topic list", out, "No topics yet", "sluice topic create")
}

func topicKeys(t *testing.T, s *adminServer, topic string) schemas.TopicKeys {
	t.Helper()
	var k schemas.TopicKeys
	decodeJSON(t, s.ok(t, "topic", "keys", topic, "-o", "json"), &k)
	if k.Key1 == "" || k.Key2 == "" || k.Key1 == k.Key2 {
		t.Fatalf("keys %+v", k)
	}
	return k
}

func TestTopicKeysRegenerate(t *testing.T) {
	s := newAdminServer(t)
	s.ok(t, "topic", "create", "orders")
	before := topicKeys(t, s, "orders")

	out := s.ok(t, "topic", "keys", "orders")
	mustContain(t, "topic keys", out, "key1:", before.Key1, "key2:", before.Key2)

	out = s.ok(t, "topic", "keys", "orders", "--regenerate", "key2")
	after := topicKeys(t, s, "orders")
	if after.Key1 != before.Key1 || after.Key2 == before.Key2 {
		t.Errorf("regenerate key2: keys went from %+v to %+v", before, after)
	}
	mustContain(t, "regenerate output", out, after.Key1, after.Key2)

	var k schemas.TopicKeys
	decodeJSON(t, s.ok(t, "topic", "keys", "orders", "--regenerate", "key1", "-o", "json"), &k)
	if k.Key1 == after.Key1 || k.Key2 != after.Key2 {
		t.Errorf("regenerate key1: keys went from %+v to %+v", after, k)
	}

	msg := s.fail(t, "topic", "keys", "orders", "--regenerate", "key3")
	mustContain(t, "regenerate key3", msg, "keyName", "key3")
}

func TestTopicJSONOutput(t *testing.T) {
	s := newAdminServer(t)

	var created schemas.Topic
	decodeJSON(t, s.ok(t, "topic", "create", "orders", "-o", "json"), &created)
	if created.Name != "orders" || created.Properties.Partitions != schemas.DefaultPartitions || created.Version == "" ||
		created.Properties.Endpoint == "" || created.Properties.CreatedAt == nil {
		t.Errorf("created topic %+v", created)
	}

	var shown schemas.Topic
	decodeJSON(t, s.ok(t, "topic", "show", "orders", "-o", "json"), &shown)
	if shown.Name != "orders" || shown.Version != created.Version {
		t.Errorf("shown topic %+v, created %+v", shown, created)
	}

	var list []schemas.Topic
	decodeJSON(t, s.ok(t, "topic", "list", "-o", "json"), &list)
	if len(list) != 1 || list[0].Name != "orders" {
		t.Errorf("topic list -o json: %+v", list)
	}

	if out := s.ok(t, "topic", "delete", "orders", "-o", "json"); out != "" {
		t.Errorf("topic delete -o json printed %q", out)
	}
	list = nil
	decodeJSON(t, s.ok(t, "topic", "list", "-o", "json"), &list)
	if list == nil || len(list) != 0 {
		t.Errorf("empty topic list -o json: %+v", list)
	}
}

func TestTopicValidationError(t *testing.T) {
	s := newAdminServer(t)

	r := s.run(t, "topic", "create", "orders", "--partitions", "65")
	if r.err == nil {
		t.Fatalf("--partitions 65: no error; stdout:\n%s", r.stdout)
	}
	mustContain(t, "--partitions 65 error", r.err.Error(), "invalid", "properties.partitions")
	if r.stdout != "" {
		t.Errorf("a failed create printed to stdout:\n%s", r.stdout)
	}

	// Two failed fields: each detail on its own line.
	msg := s.fail(t, "topic", "create", "orders", "--partitions", "65", "--retention-days", "99999")
	lines := strings.Split(msg, "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "properties.") || !strings.Contains(lines[2], "properties.") {
		t.Errorf("two invalid fields: want the message and one line per field, got:\n%s", msg)
	}
	mustContain(t, "two invalid fields", msg, "properties.partitions", "properties.retentionInDays")

	msg = s.fail(t, "topic", "create", "no")
	mustContain(t, "short name error", msg, "name")
}

func TestTopicMissingOrWrongToken(t *testing.T) {
	s := newAdminServer(t)
	t.Setenv(clientEnvToken, "")

	r := runCLI(t, "topic", "list", "--server", s.url)
	if r.err == nil {
		t.Fatal("no token: no error")
	}
	mustContain(t, "no token error", r.err.Error(), "missing admin token", "--token", clientEnvToken)

	r = runCLI(t, "topic", "list", "--server", s.url, "--token", "wrong")
	if r.err == nil {
		t.Fatal("wrong token: no error")
	}
	mustContain(t, "wrong token error", r.err.Error(), "not valid", "--token")

	// The token from the environment is used.
	t.Setenv(clientEnvToken, testAdminToken)
	if r := runCLI(t, "topic", "list", "--server", s.url); r.err != nil {
		t.Errorf("token from $%s: %v", clientEnvToken, r.err)
	}
	// And so is the server.
	t.Setenv(clientEnvServer, s.url)
	if r := runCLI(t, "topic", "list"); r.err != nil {
		t.Errorf("server from $%s: %v", clientEnvServer, r.err)
	}
}

func TestTopicConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	r := runCLI(t, "topic", "list", "--server", addr, "--token", "x")
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "connection refused error", r.err.Error(), addr, "connection refused", "sluice serve", "--server")
}

func TestTopicNotSluice(t *testing.T) {
	srv := httptest.NewServer(nil) // answers 404 page not found, in text
	t.Cleanup(srv.Close)
	r := runCLI(t, "topic", "show", "orders", "--server", srv.URL, "--token", "x")
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error from a server that is not sluice", r.err.Error(), "404", "is --server a sluice?")
}

func TestClientConfig(t *testing.T) {
	env := func(server, token string) func(string) string {
		return func(k string) string {
			switch k {
			case clientEnvServer:
				return server
			case clientEnvToken:
				return token
			}
			return ""
		}
	}
	for _, tc := range []struct {
		flags                 clientConfig
		envServer, envToken   string
		wantServer, wantToken string
	}{
		{wantServer: clientDefaultServer},
		{envServer: "http://a:1", envToken: "t", wantServer: "http://a:1", wantToken: "t"},
		{flags: clientConfig{Server: "https://b", Token: "u"}, envServer: "http://a:1", envToken: "t", wantServer: "https://b", wantToken: "u"},
	} {
		cfg := tc.flags
		cfg.Output = outputTable
		cfg.resolve(env(tc.envServer, tc.envToken))
		if cfg.Server != tc.wantServer || cfg.Token != tc.wantToken {
			t.Errorf("flags %+v, env %q %q: got %q %q, want %q %q", tc.flags, tc.envServer, tc.envToken,
				cfg.Server, cfg.Token, tc.wantServer, tc.wantToken)
		}
		if err := cfg.validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	for _, cfg := range []clientConfig{
		{Server: "127.0.0.1:8080", Output: outputTable},
		{Server: "ftp://x", Output: outputTable},
		{Server: "http://", Output: outputTable},
		{Server: clientDefaultServer, Output: "yaml"},
	} {
		if err := cfg.validate(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	r := runCLI(t, "topic", "list", "-o", "yaml")
	if r.err == nil || !strings.Contains(r.err.Error(), "-o/--output") {
		t.Errorf("-o yaml: %v", r.err)
	}
}
