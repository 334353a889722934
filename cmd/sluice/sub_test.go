package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schemas"
)

func TestSubCreateListShowDelete(t *testing.T) {
	s := newAdminServer(t)
	s.ok(t, "topic", "create", "orders")

	out := s.ok(t, "sub", "create", "orders", "audit",
		"--endpoint", "https://hooks.example/audit",
		"--event-types", "order.created,order.paid",
		"--subject-begins-with", "/shop/",
		"--subject-ends-with", ".json",
		"--max-events-per-batch", "10",
		"--delivery-schema", schemas.EventGridSchema,
		"--max-attempts", "5",
		"--ttl-minutes", "60",
		"--label", "team=billing", "--label", "a,b",
		"--header", "X-Team=billing",
		"--secret-header", "Authorization=Bearer s3cret",
	)
	mustContain(t, "sub create output", out,
		"name:", "audit", "topic:", "orders", "endpoint:", "https://hooks.example/audit",
		"deliverySchema:", schemas.EventGridSchema, "maxEventsPerBatch:", "10",
		"header:", "X-Team: billing", "Authorization: Bearer s3cret (secret)",
		"eventTypes:", "order.created, order.paid", "subjectBeginsWith:", "/shop/", "subjectEndsWith:", ".json",
		"maxDeliveryAttempts:", "5", "eventTimeToLive:", "60 minutes", "labels:", "team=billing, a,b",
		"state:", "Succeeded", "Signing secret", schemas.SigningSecretPrefix)
	if strings.Contains(out, "signingSecret:") {
		t.Errorf("sub create shows the signing secret twice:\n%s", out)
	}
	secret := secretIn(t, out)

	// What was sent is what the server holds.
	var got schemas.Subscription
	decodeJSON(t, s.ok(t, "sub", "show", "orders", "audit", "--secrets", "-o", "json"), &got)
	p := got.Properties
	if p.SigningSecret != secret {
		t.Errorf("signing secret printed %q, stored %q", secret, p.SigningSecret)
	}
	if f := p.Filter; f == nil || strings.Join(f.IncludedEventTypes, ",") != "order.created,order.paid" ||
		f.SubjectBeginsWith != "/shop/" || f.SubjectEndsWith != ".json" {
		t.Errorf("filter %+v", p.Filter)
	}
	if r := p.RetryPolicy; r == nil || r.MaxDeliveryAttempts != 5 || r.EventTimeToLiveInMinutes != 60 {
		t.Errorf("retry policy %+v", p.RetryPolicy)
	}
	if strings.Join(p.Labels, "|") != "team=billing|a,b" {
		t.Errorf("labels %q", p.Labels)
	}
	maps := p.Destination.Properties.DeliveryAttributeMappings
	if len(maps) != 2 || maps[0].Name != "X-Team" || maps[0].Properties.Value != "billing" || maps[0].Properties.IsSecret ||
		maps[1].Name != "Authorization" || maps[1].Properties.Value != "Bearer s3cret" || !maps[1].Properties.IsSecret {
		t.Errorf("delivery attribute mappings %+v", maps)
	}

	// Without --secrets the secrets stay hidden.
	out = s.ok(t, "sub", "show", "orders", "audit")
	mustContain(t, "sub show", out, "name:", "audit", "signingSecret:", "(hidden; --secrets shows it)",
		"Authorization: (secret; --secrets shows it)", "deadLetter:", "deadletter/orders/audit/")
	if strings.Contains(out, secret) || strings.Contains(out, "s3cret") {
		t.Errorf("sub show without --secrets shows a secret:\n%s", out)
	}
	out = s.ok(t, "sub", "show", "orders", "audit", "--secrets")
	mustContain(t, "sub show --secrets", out, "signingSecret:", secret, "Bearer s3cret")

	s.ok(t, "sub", "create", "orders", "all", "--endpoint", "https://hooks.example/all")
	out = s.ok(t, "sub", "list", "orders")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("sub list: want a header and 2 rows:\n%s", out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME ENDPOINT SCHEMA FILTER STATE" {
		t.Errorf("sub list header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "all" || f[1] != "https://hooks.example/all" ||
		f[2] != schemas.CloudEventSchemaV1_0 || f[3] != "-" || f[4] != "Succeeded" {
		t.Errorf("sub list row %q", lines[1])
	}
	mustContain(t, "sub list row", lines[2], "audit", "https://hooks.example/audit", schemas.EventGridSchema,
		`types=order.created,order.paid subject^="/shop/" subject$=".json"`, "Succeeded")
	if strings.Contains(out, secret) {
		t.Errorf("sub list shows a secret:\n%s", out)
	}

	msg := s.fail(t, "sub", "create", "orders", "all", "--endpoint", "https://hooks.example/all")
	mustContain(t, "second sub create", msg, "already exists")

	out = s.ok(t, "sub", "delete", "orders", "all")
	mustContain(t, "sub delete", out, "Deleted event subscription all of topic orders")
	out = s.ok(t, "sub", "delete", "orders", "all")
	mustContain(t, "second sub delete", out, "does not exist; nothing deleted")
	msg = s.fail(t, "sub", "show", "orders", "all")
	mustContain(t, "show of a deleted sub", msg, "does not exist")

	s.ok(t, "sub", "delete", "orders", "audit")
	out = s.ok(t, "sub", "list", "orders")
	mustContain(t, "empty sub list", out, "no event subscriptions", "sluice sub create orders")

	msg = s.fail(t, "sub", "list", "nosuchtopic")
	mustContain(t, "sub list of a missing topic", msg, `topic "nosuchtopic" does not exist`)
}

// secretIn returns the signing secret `sub create` printed.
func secretIn(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, schemas.SigningSecretPrefix) {
			return f
		}
	}
	t.Fatalf("no signing secret in:\n%s", out)
	return ""
}

func TestSubCreateFromFile(t *testing.T) {
	s := newAdminServer(t)
	s.ok(t, "topic", "create", "orders")
	path := filepath.Join(t.TempDir(), "sub.json")
	doc := `{
	  "name": "fromfile",
	  "properties": {
	    "destination": {"endpointType": "WebHook", "properties": {"endpointUrl": "https://hooks.example/f", "preferredBatchSizeInKilobytes": 128}},
	    "filter": {"advancedFilters": [{"operatorType": "NumberGreaterThan", "key": "data.total", "value": 100}]},
	    "deadLetterDestination": {"endpointType": "None"}
	  }
	}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	var created schemas.Subscription
	decodeJSON(t, s.ok(t, "sub", "create", "orders", "-f", path, "-o", "json"), &created)
	if created.Name != "fromfile" || created.Topic != "orders" || created.Properties.SigningSecret == "" ||
		created.Properties.Destination.Properties.PreferredBatchSizeInKilobytes != 128 {
		t.Errorf("created from file: %+v", created)
	}
	out := s.ok(t, "sub", "show", "orders", "fromfile")
	mustContain(t, "sub show", out, "advancedFilter:", "data.total NumberGreaterThan 100", "deadLetter:", "none",
		"preferredBatchSizeInKilobytes:", "128")

	var list []schemas.Subscription
	decodeJSON(t, s.ok(t, "sub", "list", "orders", "-o", "json"), &list)
	if len(list) != 1 || list[0].Name != "fromfile" || list[0].Properties.SigningSecret != "" {
		t.Errorf("sub list -o json: %+v", list)
	}

	// The name argument wins over the file's; the server refuses a mismatch.
	msg := s.fail(t, "sub", "create", "orders", "other", "-f", path)
	mustContain(t, "name mismatch", msg, "name", "differs")

	// -f and the other subscription flags are exclusive, and it says so.
	msg = s.fail(t, "sub", "create", "orders", "x", "-f", path, "--endpoint", "https://e", "--label", "l")
	mustContain(t, "-f with flags", msg, "-f", "cannot be combined with --endpoint, --label")

	msg = s.fail(t, "sub", "create", "orders", "-f", filepath.Join(t.TempDir(), "missing.json"))
	mustContain(t, "missing file", msg, "-f", "missing.json")

	// Standard input.
	r := runCLIStdin(t, strings.Replace(doc, "fromfile", "stdin", 1),
		"sub", "create", "orders", "-f", "-", "--server", s.url, "--token", testAdminToken)
	if r.err != nil {
		t.Fatalf("-f -: %v", r.err)
	}
	mustContain(t, "-f - output", r.stdout, "name:", "stdin")
}

func TestSubCreateErrors(t *testing.T) {
	s := newAdminServer(t)
	s.ok(t, "topic", "create", "orders")

	msg := s.fail(t, "sub", "create", "orders", "nohook")
	mustContain(t, "no --endpoint", msg, "--endpoint is required", "-f")

	msg = s.fail(t, "sub", "create", "orders", "--endpoint", "https://e")
	mustContain(t, "no name", msg, "sluice sub create <topic> <name>")

	msg = s.fail(t, "sub", "create", "orders", "badheader", "--endpoint", "https://e", "--header", "novalue")
	mustContain(t, "--header without =", msg, "--header", "Name=Value")

	// A validation error of the server, with the field that failed.
	r := s.run(t, "sub", "create", "orders", "bad", "--endpoint", "not a url", "--max-attempts", "31")
	if r.err == nil {
		t.Fatal("invalid subscription: no error")
	}
	lines := strings.Split(r.err.Error(), "\n")
	if len(lines) != 3 {
		t.Errorf("two invalid fields: want the message and one line per field, got:\n%s", r.err)
	}
	mustContain(t, "invalid subscription", r.err.Error(),
		"properties.destination.properties.endpointUrl", "properties.retryPolicy.maxDeliveryAttempts")

	msg = s.fail(t, "sub", "create", "nosuchtopic", "x1x", "--endpoint", "https://e")
	mustContain(t, "missing topic", msg, `topic "nosuchtopic" does not exist`)
}

func TestSubMissingToken(t *testing.T) {
	s := newAdminServer(t)
	t.Setenv(clientEnvToken, "")
	r := runCLI(t, "sub", "list", "orders", "--server", s.url)
	if r.err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "no token error", r.err.Error(), "missing admin token", "--token")
}

func runCLIStdin(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr strings.Builder
	root := newRootCmd(&stdout, &stderr)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}
