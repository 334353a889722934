package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

func openMemStore(t *testing.T) *objectlog.Store {
	t.Helper()
	s, err := objectlog.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestDeadLettersRoundTrip(t *testing.T) {
	ctx := context.Background()
	published := time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.FixedZone("CET", 3600))
	attempt := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	now := time.Date(2025, 3, 4, 9, 15, 0, 0, time.FixedZone("PST", -8*3600)) // 17:15 UTC

	for _, schema := range []string{schemas.CloudEventSchemaV1_0, schemas.EventGridSchema} {
		t.Run(schema, func(t *testing.T) {
			store := openMemStore(t)
			e1, e2 := storedEvent(t, "e1", `,"dataversion":"2.0"`), storedEvent(t, "e2", "")
			e1.Published, e2.Published = published, published
			dls := []DeadLetter{
				{Event: e1, Reason: ReasonMaxDeliveryAttempts, DeliveryAttempts: 30, LastDeliveryOutcome: OutcomeBusy, LastHTTPStatusCode: 503, LastDeliveryAttemptTime: attempt},
				{Event: e2, Reason: ReasonNonRetriable, DeliveryAttempts: 1, LastDeliveryOutcome: OutcomeBadRequest, LastHTTPStatusCode: 400, LastDeliveryAttemptTime: attempt},
			}
			key, err := WriteDeadLetters(ctx, store, "Orders", "Audit", schema, now, dls)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(key, "deadletter/orders/audit/2025/03/04/17/") || !strings.HasSuffix(key, ".json") {
				t.Errorf("key %s", key)
			}
			if at, ok := DeadLetterKeyTime(key); !ok || !at.Equal(now) {
				t.Errorf("DeadLetterKeyTime(%s) = %v, %v; want %v", key, at, ok, now)
			}

			var keys []string
			var recs []json.RawMessage
			err = ListDeadLetters(ctx, store, "orders", "AUDIT", func(k string, rs []json.RawMessage) error {
				keys = append(keys, k)
				recs = append(recs, rs...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != key || len(recs) != 2 {
				t.Fatalf("listed %v with %d records", keys, len(recs))
			}
			var got []map[string]any
			for _, r := range recs {
				var m map[string]any
				if err := json.Unmarshal(r, &m); err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
			want := []map[string]any{
				{"deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30.0, "lastDeliveryOutcome": "Busy",
					"lastHttpStatusCode": 503.0, "publishTime": "2025-03-04T04:06:07.89Z", "lastDeliveryAttemptTime": "2025-03-04T09:00:00Z"},
				{"deadLetterReason": "NonRetriableStatusCode", "deliveryAttempts": 1.0, "lastDeliveryOutcome": "BadRequest",
					"lastHttpStatusCode": 400.0, "publishTime": "2025-03-04T04:06:07.89Z", "lastDeliveryAttemptTime": "2025-03-04T09:00:00Z"},
			}
			for i := range want {
				for k, v := range want[i] {
					if got[i][k] != v {
						t.Errorf("record %d: %s = %v, want %v", i, k, got[i][k], v)
					}
				}
			}
			// The rest of each record is the event as the subscription gets it.
			for i, e := range []*Event{e1, e2} {
				ev := make(map[string]any)
				for k, v := range got[i] {
					if _, added := want[i][k]; !added {
						ev[k] = v
					}
				}
				wantEv := e.JSON
				if schema == schemas.EventGridSchema {
					if wantEv, err = schemas.ToEventGrid(e.JSON); err != nil {
						t.Fatal(err)
					}
				}
				b, _ := json.Marshal(ev)
				if !jsonSame(t, b, wantEv) {
					t.Errorf("record %d event:\n%s\nwant\n%s", i, b, wantEv)
				}
			}
			if schema == schemas.EventGridSchema && (got[0]["eventType"] != "Order.Created" || got[0]["dataVersion"] != "2.0") {
				t.Errorf("not in the Event Grid schema: %v", got[0])
			}
		})
	}
}

func jsonSame(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestDeadLettersNullTimes(t *testing.T) {
	store := openMemStore(t)
	e := storedEvent(t, "e1", "")
	key, err := WriteDeadLetters(context.Background(), store, "t", "s", schemas.CloudEventSchemaV1_0, time.Now(),
		[]DeadLetter{{Event: e, Reason: ReasonTTL, LastDeliveryOutcome: ""}})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadDeadLetters(context.Background(), store, key)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(recs[0], &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"publishTime", "lastDeliveryAttemptTime"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if m["deliveryAttempts"] != 0.0 || m["lastHttpStatusCode"] != 0.0 || m["deadLetterReason"] != ReasonTTL {
		t.Errorf("record %v", m)
	}
}

func TestDeadLettersOrderAndSince(t *testing.T) {
	ctx := context.Background()
	store := openMemStore(t)
	base := time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)
	var written []string
	for i, at := range []time.Time{base, base.Add(time.Second), base.Add(time.Hour + time.Millisecond), base.Add(26 * time.Hour)} {
		e := storedEvent(t, "e"+string(rune('0'+i)), "")
		key, err := WriteDeadLetters(ctx, store, "t", "s", schemas.CloudEventSchemaV1_0, at, []DeadLetter{{Event: e, Reason: ReasonTTL}})
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, key)
	}
	// Another subscription's dead letters, and one whose name extends this one's.
	for _, sub := range []string{"other", "s2"} {
		if _, err := WriteDeadLetters(ctx, store, "t", sub, schemas.CloudEventSchemaV1_0, base, []DeadLetter{{Event: storedEvent(t, "x", ""), Reason: ReasonTTL}}); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(written[0], "/2025/12/31/23/") || !strings.Contains(written[1], "/2026/01/01/00/") ||
		!strings.Contains(written[2], "/2026/01/01/00/") || !strings.Contains(written[3], "/2026/01/02/01/") {
		t.Errorf("keys do not follow the UTC hour: %v", written)
	}
	list := func(since time.Time) []string {
		var keys []string
		if err := ListDeadLettersSince(ctx, store, "t", "s", since, func(k string, _ []json.RawMessage) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if got := list(time.Time{}); strings.Join(got, " ") != strings.Join(written, " ") {
		t.Errorf("listed\n%v\nwant, in time order,\n%v", got, written)
	}
	if got := list(base.Add(time.Second)); strings.Join(got, " ") != strings.Join(written[1:], " ") {
		t.Errorf("since +1s: %v", got)
	}
	if got := list(base.Add(time.Hour)); strings.Join(got, " ") != strings.Join(written[2:], " ") {
		t.Errorf("since +1h: %v", got)
	}
	if got := list(base.Add(48 * time.Hour)); len(got) != 0 {
		t.Errorf("since +48h: %v", got)
	}

	stop := errors.New("stop")
	n := 0
	err := ListDeadLetters(ctx, store, "t", "s", func(string, []json.RawMessage) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn's error: got %v after %d calls", err, n)
	}
}

func TestDeadLetterKey(t *testing.T) {
	store := openMemStore(t)
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	key, err := WriteDeadLetters(context.Background(), store, "T", "S", schemas.CloudEventSchemaV1_0, now, []DeadLetter{{Event: storedEvent(t, "e", ""), Reason: ReasonTTL}})
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(key, DeadLetterPrefix("t", "s"))
	id := strings.TrimSuffix(rel[strings.LastIndexByte(rel, '/')+1:], ".json")
	for _, ref := range []string{key, rel, id, id + ".json"} {
		if got, err := DeadLetterKey("t", "s", ref); err != nil || got != key {
			t.Errorf("DeadLetterKey(%q) = %q, %v; want %q", ref, got, err, key)
		}
	}
	for _, ref := range []string{"deadletter/t/other/2025/06/07/08/x.json", "not-a-ulid"} {
		if got, err := DeadLetterKey("t", "s", ref); err == nil {
			t.Errorf("DeadLetterKey(%q) = %q, want an error", ref, got)
		}
	}
}

func TestWriteDeadLettersErrors(t *testing.T) {
	store := openMemStore(t)
	ctx := context.Background()
	e := storedEvent(t, "e", "")
	if key, err := WriteDeadLetters(ctx, store, "t", "s", schemas.CloudEventSchemaV1_0, time.Now(), nil); key != "" || err != nil {
		t.Errorf("no dead letters: %q, %v", key, err)
	}
	for _, tc := range []struct {
		name, schema string
		dls          []DeadLetter
		want         string
	}{
		{"unknown schema", "Custom", []DeadLetter{{Event: e}}, "unknown delivery schema"},
		{"no event", schemas.CloudEventSchemaV1_0, []DeadLetter{{}}, "no event"},
		{"not renderable", schemas.EventGridSchema, []DeadLetter{{Event: &Event{ID: "x", JSON: []byte(`{"id":"x"}`)}}}, "dead letter \"x\""},
	} {
		if _, err := WriteDeadLetters(ctx, store, "t", "s", tc.schema, time.Now(), tc.dls); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	var n int
	if err := ListDeadLetters(ctx, store, "t", "s", func(string, []json.RawMessage) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("failed writes left %d objects (%v)", n, err)
	}
}

// TestWriteDeadLettersLostAck: a create-if-absent whose acknowledgement was
// lost is retried by the store and then fails its precondition against its
// own bytes; that is a success, written once.
func TestWriteDeadLettersLostAck(t *testing.T) {
	ctx := context.Background()
	mem := objectlog.NewMemDriver()
	store := objectlog.NewStore(objectlog.NewFaultDriver(mem, objectlog.FaultConfig{LostAck: 1}),
		objectlog.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	key, err := WriteDeadLetters(ctx, store, "t", "s", schemas.CloudEventSchemaV1_0, time.Now(),
		[]DeadLetter{{Event: storedEvent(t, "e", ""), Reason: ReasonTTL}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := mem.List(ctx, DeadLetterPrefix("t", "s"), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Key != key {
		t.Errorf("stored %v, want just %s", page.Objects, key)
	}
}
