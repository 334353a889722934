package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// dlqFixture is a directory store with topic "orders" and subscriptions
// "audit" (dead letters in the store) and "bucketed" (dead letters in a
// second directory store, its StorageBucket destination).
type dlqFixture struct {
	store, bucket string // store URLs
	own, dl       *objectlog.Store
}

func newDLQFixture(t *testing.T) *dlqFixture {
	t.Helper()
	ctx := context.Background()
	f := &dlqFixture{store: "file://" + t.TempDir(), bucket: "file://" + t.TempDir()}
	var err error
	if f.own, err = objectlog.Open(ctx, f.store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.own.Close() })
	if f.dl, err = objectlog.Open(ctx, f.bucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.dl.Close() })

	reg := controlplane.New(f.own, time.Now)
	if _, _, err := reg.PutTopic(ctx, schemas.Topic{Name: "orders"}, "", true); err != nil {
		t.Fatal(err)
	}
	sub := func(name string, dl *schemas.DeadLetterDestination) {
		s := schemas.Subscription{Name: name, Properties: schemas.SubscriptionProperties{
			Destination: schemas.Destination{EndpointType: schemas.EndpointTypeWebHook,
				Properties: schemas.DestinationProperties{EndpointURL: "https://example.com/hook"}},
			DeadLetterDestination: dl,
		}}
		if _, _, err := reg.PutSubscription(ctx, "orders", s, "", true); err != nil {
			t.Fatal(err)
		}
	}
	sub("audit", nil)
	sub("bucketed", &schemas.DeadLetterDestination{EndpointType: schemas.DeadLetterStorageBucket,
		Properties: schemas.DeadLetterDestinationProperties{URL: f.bucket}})
	sub("dropped", &schemas.DeadLetterDestination{EndpointType: schemas.DeadLetterNone})
	return f
}

// write dead-letters the events with these ids as one object at now.
func (f *dlqFixture) write(t *testing.T, store *objectlog.Store, sub string, now time.Time, reason string, status int, ids ...string) string {
	t.Helper()
	var dls []dispatch.DeadLetter
	for _, id := range ids {
		ce, err := schemas.ParseCloudEvent([]byte(`{"specversion":"1.0","id":"` + id + `","source":"/orders","type":"Order.Created","time":"2025-01-02T15:04:05Z","data":{"n":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		e, err := dispatch.ParseEvent(ce.JSON)
		if err != nil {
			t.Fatal(err)
		}
		e.Published = now.Add(-time.Hour)
		dls = append(dls, dispatch.DeadLetter{Event: &e, Reason: reason, DeliveryAttempts: 3,
			LastDeliveryOutcome: "Busy", LastHTTPStatusCode: status, LastDeliveryAttemptTime: now})
	}
	key, err := dispatch.WriteDeadLetters(context.Background(), store, "orders", sub, schemas.CloudEventSchemaV1_0, now, dls)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestDLQListAndShow(t *testing.T) {
	f := newDLQFixture(t)
	t0 := time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC)
	k1 := f.write(t, f.own, "audit", t0, dispatch.ReasonMaxDeliveryAttempts, 503, "e1", "e2")
	k2 := f.write(t, f.own, "audit", t0.Add(2*time.Hour), dispatch.ReasonNonRetriable, 400, "e3")

	// Table: one row per record, oldest first, keys relative to the subscription.
	r := runCLI(t, "dlq", "list", "orders", "audit", "--store", f.store)
	if r.err != nil {
		t.Fatalf("dlq list: %v\nstderr:\n%s", r.err, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("dlq list table:\n%s", r.stdout)
	}
	rel1 := strings.TrimPrefix(k1, dispatch.DeadLetterPrefix("orders", "audit"))
	for i, want := range [][]string{
		{"2025-01-02T15:00:00Z", rel1, "MaxDeliveryAttemptsExceeded", "3", "503", "e1", "Order.Created"},
		{"2025-01-02T15:00:00Z", rel1, "MaxDeliveryAttemptsExceeded", "3", "503", "e2", "Order.Created"},
		{"2025-01-02T17:00:00Z", "2025/01/02/17/", "NonRetriableStatusCode", "3", "400", "e3", "Order.Created"},
	} {
		mustContain(t, "row", lines[i+1], want...)
	}

	// JSON: the stored records, one per line.
	r = runCLI(t, "dlq", "list", "orders", "audit", "--store", f.store, "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	recs := jsonLines(t, r.stdout)
	if len(recs) != 3 || recs[0]["id"] != "e1" || recs[2]["id"] != "e3" ||
		recs[2]["deadLetterReason"] != "NonRetriableStatusCode" || recs[2]["lastHttpStatusCode"] != 400.0 ||
		recs[0]["publishTime"] != "2025-01-02T14:00:00Z" {
		t.Errorf("dlq list -o json:\n%s", r.stdout)
	}

	// -n and --since.
	r = runCLI(t, "dlq", "list", "orders", "audit", "--store", f.store, "-o", "json", "-n", "2")
	if got := jsonLines(t, r.stdout); r.err != nil || len(got) != 2 {
		t.Errorf("-n 2: %v\n%s", r.err, r.stdout)
	}
	r = runCLI(t, "dlq", "list", "orders", "audit", "--store", f.store, "-o", "json", "--since", "2025-01-02T16:00:00Z")
	if got := jsonLines(t, r.stdout); r.err != nil || len(got) != 1 || got[0]["id"] != "e3" {
		t.Errorf("--since: %v\n%s", r.err, r.stdout)
	}
	r = runCLI(t, "dlq", "list", "orders", "audit", "--store", f.store, "--since", "2030-01-01T00:00:00Z")
	if r.err != nil || r.stdout != "" {
		t.Errorf("--since later than all: err %v, stdout %q", r.err, r.stdout)
	}
	mustContain(t, "stderr", r.stderr, "no dead letters of orders/audit since 2030-01-01T00:00:00Z")

	// show, by relative key, full key and ULID.
	ulid := strings.TrimSuffix(k2[strings.LastIndexByte(k2, '/')+1:], ".json")
	for _, ref := range []string{rel1, k1, ulid} {
		r = runCLI(t, "dlq", "show", "orders", "audit", ref, "--store", f.store)
		if r.err != nil {
			t.Fatalf("dlq show %s: %v", ref, r.err)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("dlq show %s: not a JSON array: %v\n%s", ref, err, r.stdout)
		}
		if !strings.Contains(r.stdout, "\n  {\n") {
			t.Errorf("dlq show %s: not indented:\n%s", ref, r.stdout)
		}
		want := 2
		if ref == ulid {
			want = 1
		}
		if len(got) != want {
			t.Errorf("dlq show %s: %d records", ref, len(got))
		}
	}
}

func TestDLQStorageBucketDestination(t *testing.T) {
	f := newDLQFixture(t)
	now := time.Now().UTC()
	f.write(t, f.dl, "bucketed", now, dispatch.ReasonTTL, 0, "in-bucket")
	f.write(t, f.own, "bucketed", now, dispatch.ReasonTTL, 0, "in-own-store")

	r := runCLI(t, "dlq", "list", "orders", "bucketed", "--store", f.store, "-o", "json")
	if got := jsonLines(t, r.stdout); r.err != nil || len(got) != 1 || got[0]["id"] != "in-bucket" {
		t.Errorf("dlq list of a subscription with a StorageBucket destination: %v\n%s", r.err, r.stdout)
	}
}

func TestDLQDeadLetteringOff(t *testing.T) {
	f := newDLQFixture(t)
	r := runCLI(t, "dlq", "list", "orders", "dropped", "--store", f.store)
	if r.err != nil {
		t.Fatal(r.err)
	}
	mustContain(t, "stderr", r.stderr, "dead-lettering turned off", "no dead letters of orders/dropped")
}

func TestDLQErrors(t *testing.T) {
	f := newDLQFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "nosuchtopic", "audit"}, `topic "nosuchtopic" does not exist in store file://`},
		{[]string{"list", "orders", "nosuchsub"}, `event subscription "nosuchsub" of topic "orders" does not exist in store file://`},
		{[]string{"show", "orders", "nosuchsub", "01JGJ8Z3K4M5N6P7Q8R9S0T1V2"}, `event subscription "nosuchsub" of topic "orders" does not exist`},
		{[]string{"show", "orders", "audit", "01JGJ8Z3K4M5N6P7Q8R9S0T1V2"}, "no dead-letter object deadletter/orders/audit/"},
		{[]string{"show", "orders", "audit", "not-a-key"}, `"not-a-key" is neither a dead-letter key nor a ULID`},
		{[]string{"show", "orders", "audit", "deadletter/orders/other/2025/01/02/15/x.json"}, "is not a dead letter of orders/audit"},
		{[]string{"list", "orders", "a"}, `subscription "a": name: must be 3 to 64 characters long`},
		{[]string{"show", "o", "audit", "x"}, `topic "o": name: must be 3 to 50 characters long`},
		{[]string{"list", "orders", "audit", "--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"list", "orders", "audit", "-n", "-1"}, "-n/--count -1"},
		{[]string{"list", "orders", "audit", "-o", "yaml"}, `-o/--output "yaml"`},
		{[]string{"list", "orders"}, "accepts 2 arg(s)"},
		{[]string{"nosuchcommand"}, "unknown command"},
	} {
		r := runCLI(t, append(append([]string{"dlq"}, tc.args...), "--store", f.store)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("dlq %v: error %v, want one containing %q", tc.args, r.err, tc.want)
		}
	}
}

func TestDLQStoreFromEnv(t *testing.T) {
	f := newDLQFixture(t)
	f.write(t, f.own, "audit", time.Now(), dispatch.ReasonTTL, 0, "e1")
	t.Setenv(envStore, f.store)
	r := runCLI(t, "dlq", "list", "orders", "audit", "-o", "json")
	if got := jsonLines(t, r.stdout); r.err != nil || len(got) != 1 {
		t.Errorf("store from $%s: %v\n%s", envStore, r.err, r.stdout)
	}
}
