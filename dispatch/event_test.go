package dispatch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

func TestParseEvent(t *testing.T) {
	ts := time.Date(2025, 1, 2, 15, 4, 5, 123000000, time.UTC)
	for _, tc := range []struct {
		name string
		json string
		want Event // JSON is not compared
	}{
		{
			name: "canonical",
			json: `{"specversion":"1.0","id":"e1","source":"/orders","type":"Order.Created","subject":"orders/1","time":"2025-01-02T15:04:05.123Z","datacontenttype":"application/json","data":{"id":"x","time":"no"}}`,
			want: Event{ID: "e1", Source: "/orders", Type: "Order.Created", Subject: "orders/1", Time: ts},
		},
		{
			name: "no subject, offset time converted to UTC",
			json: `{"specversion":"1.0","id":"e2","source":"s","type":"t","time":"2025-01-02T16:04:05.123+01:00"}`,
			want: Event{ID: "e2", Source: "s", Type: "t", Time: ts},
		},
		{
			name: "string dataversion",
			json: `{"specversion":"1.0","id":"e3","source":"s","type":"t","time":"2025-01-02T15:04:05.123Z","dataversion":"2.0","data":1}`,
			want: Event{ID: "e3", Source: "s", Type: "t", Time: ts, DataVersion: "2.0"},
		},
		{
			name: "number dataversion as its JSON text",
			json: `{"specversion":"1.0","id":"e4","source":"s","type":"t","time":"2025-01-02T15:04:05.123Z","dataversion":1.10}`,
			want: Event{ID: "e4", Source: "s", Type: "t", Time: ts, DataVersion: "1.10"},
		},
		{
			name: "escapes decoded",
			json: `{"specversion":"1.0","id":"e\"5","source":"s\\x","type":"t\u00e9","subject":"a\/b","time":"2025-01-02T15:04:05.123Z"}`,
			want: Event{ID: `e"5`, Source: `s\x`, Type: "té", Subject: "a/b", Time: ts},
		},
		{
			name: "data before attributes, nested braces and quotes in strings",
			json: `{"data":{"a":["}",{"b":"\"]"}],"c":null},"id":"e6","source":"s","type":"t","time":"2025-01-02T15:04:05.123Z"}`,
			want: Event{ID: "e6", Source: "s", Type: "t", Time: ts},
		},
		{
			name: "whitespace",
			json: " {\n \"id\" : \"e7\" ,\t\"source\":\"s\", \"type\":\"t\",\"time\":\"2025-01-02T15:04:05.123Z\", \"data\" : true }\n",
			want: Event{ID: "e7", Source: "s", Type: "t", Time: ts},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.JSON) != tc.json {
				t.Errorf("JSON not kept as given")
			}
			got.JSON = nil
			if !got.Time.Equal(tc.want.Time) || got.Time.Location() != time.UTC {
				t.Errorf("time %v, want %v in UTC", got.Time, tc.want.Time)
			}
			got.Time, tc.want.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not an object", `[1]`, "not a well-formed JSON object"},
		{"empty", ``, "not a well-formed JSON object"},
		{"truncated string", `{"id":"e1`, "not a well-formed JSON object"},
		{"truncated object", `{"id":"e1","data":{"a":1}`, "not a well-formed JSON object"},
		{"missing colon", `{"id" "e1"}`, "not a well-formed JSON object"},
		{"missing value", `{"id":}`, "not a well-formed JSON object"},
		{"no id or time", `{"source":"s","type":"t"}`, "no id"},
		{"empty object", `{}`, "no id, source, type"},
		{"id not a string", `{"id":1,"source":"s","type":"t","time":"2025-01-02T15:04:05Z"}`, "attribute id is not a string"},
		{"bad time", `{"id":"e","source":"s","type":"t","time":"yesterday"}`, "time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseEventFromEventGridSchema checks that ParseEvent reads the
// attributes where schemas puts them for an Event Grid schema event,
// dataVersion included.
func TestParseEventFromEventGridSchema(t *testing.T) {
	evs, err := schemas.ParseEventGridEvents([]byte(`[{"id":"g1","subject":"a/b","eventType":"Contoso.Thing","eventTime":"2025-01-02T15:04:05+0000","dataVersion":"3.1","data":{"k":1}}]`), "mytopic")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEvent(evs[0].JSON)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{JSON: evs[0].JSON, ID: "g1", Source: "mytopic", Type: "Contoso.Thing", Subject: "a/b", DataVersion: "3.1",
		Time: time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)}
	if got.ID != want.ID || got.Source != want.Source || got.Type != want.Type || got.Subject != want.Subject ||
		got.DataVersion != want.DataVersion || !got.Time.Equal(want.Time) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestEventAttribute(t *testing.T) {
	doc := []byte(`{"specversion":"1.0","id":"e1","source":"s","type":"t","time":"2025-01-02T15:04:05Z","tenant":"acme","priority":5,"urgent":true,"nothing":null,"data":{"system":"crm","n":1.50,"deep":{"x":"y"},"list":[1]}}`)
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"id", "e1", true},
		{"tenant", "acme", true},
		{"priority", "5", true},
		{"urgent", "true", true},
		{"nothing", "", false},
		{"missing", "", false},
		{"data", "", false},
		{"data.system", "crm", true},
		{"data.n", "1.50", true},
		{"data.deep.x", "y", true},
		{"data.deep", "", false},
		{"data.list", "", false},
		{"data.system.x", "", false},
		{"data.missing", "", false},
	} {
		got, ok := eventAttribute(doc, tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("eventAttribute(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func benchmarkEvent(dataBytes int) []byte {
	return []byte(`{"specversion":"1.0","id":"01JD4S0Z8Q0000000000000000","source":"/topics/orders","type":"Contoso.Orders.Created",` +
		`"subject":"orders/12345","time":"2025-01-02T15:04:05.123456Z","datacontenttype":"application/json","dataversion":"1.0",` +
		`"data":{"payload":"` + strings.Repeat("x", dataBytes) + `"}}`)
}

func BenchmarkParseEvent(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		doc := benchmarkEvent(size)
		b.Run(fmt.Sprintf("data=%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseEvent(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseEventEncodingJSON is the obvious alternative to
// ParseEvent's scanner, for comparison: encoding/json decoding the same
// attributes (it validates and scans all of data).
func BenchmarkParseEventEncodingJSON(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		doc := benchmarkEvent(size)
		b.Run(fmt.Sprintf("data=%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				var a struct {
					ID, Source, Type, Subject string
					Time                      time.Time
					DataVersion               json.RawMessage `json:"dataversion"`
				}
				if err := json.Unmarshal(doc, &a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
