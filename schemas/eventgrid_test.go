package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testTopic = "/topics/orders"

// eg builds a valid Event Grid event with extra members appended.
func eg(extra string) string {
	return `{"id":"e1","subject":"s","eventType":"T","eventTime":"2026-01-02T15:04:05Z"` + extra + `}`
}

func TestParseEventGridEventsRules(t *testing.T) {
	for _, tc := range []eventCase{
		{"no id", `[{"subject":"s","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].id", "required"},
		{"null id", `[{"id":null,"subject":"s","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].id", "required"},
		{"empty id", `[{"id":"","subject":"s","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].id", "must not be empty"},
		{"id number", `[{"id":1,"subject":"s","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].id", "must be a string, not a number"},
		{"no subject", `[{"id":"e1","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].subject", "required"},
		{"subject object", `[{"id":"e1","subject":{},"eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].subject", "must be a string, not an object"},
		{"subject control character", `[{"id":"e1","subject":"a\tb","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].subject", "control characters (found U+0009"},
		{"no eventType", `[{"id":"e1","subject":"s","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].eventType", "required"},
		{"empty eventType", `[{"id":"e1","subject":"s","eventType":"","eventTime":"2026-01-02T15:04:05Z"}]`, "[0].eventType", "must not be empty"},
		{"no eventTime", `[{"id":"e1","subject":"s","eventType":"T"}]`, "[0].eventTime", "required"},
		{"eventTime without offset", `[` + strings.Replace(eg(``), "05Z", "05", 1) + `]`, "[0].eventTime", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"},
		{"eventTime empty", `[` + strings.Replace(eg(``), "2026-01-02T15:04:05Z", "", 1) + `]`, "[0].eventTime", "RFC 3339"},
		{"eventTime offset +00", `[` + strings.Replace(eg(``), "05Z", "05+00", 1) + `]`, "[0].eventTime", "RFC 3339"},
		{"eventTime offset +24:00", `[` + strings.Replace(eg(``), "05Z", "05+2400", 1) + `]`, "[0].eventTime", "RFC 3339"},
		{"eventTime date only", `[` + strings.Replace(eg(``), "2026-01-02T15:04:05Z", "2026-01-02", 1) + `]`, "[0].eventTime", "RFC 3339"},
		{"eventTime number", `[{"id":"e1","subject":"s","eventType":"T","eventTime":0}]`, "[0].eventTime", "must be a string, not a number"},
		{"dataVersion number", `[` + eg(`,"dataVersion":1`) + `]`, "[0].dataVersion", "must be a string, not a number"},
		{"metadataVersion 2", `[` + eg(`,"metadataVersion":"2"`) + `]`, "[0].metadataVersion", `must be "1" if present (found "2")`},
		{"metadataVersion number", `[` + eg(`,"metadataVersion":1`) + `]`, "[0].metadataVersion", "must be a string, not a number"},
		{"other topic", `[` + eg(`,"topic":"/topics/other"`) + `]`, "[0].topic", `must be left out or "/topics/orders"`},
		{"topic number", `[` + eg(`,"topic":5`) + `]`, "[0].topic", "must be a string"},
		{"unknown field", `[` + eg(`,"source":"x"`) + `]`, "[0].source", "unknown field; expected one of topic, subject, eventType, eventTime, id, data, dataVersion, metadataVersion"},
		{"wrong case", `[` + eg(`,"DataVersion":"1"`) + `]`, "[0].DataVersion", `did you mean "dataVersion"? (names are case-sensitive)`},
		{"wrong case eventtime", `[{"id":"e1","subject":"s","eventType":"T","eventtime":"2026-01-02T15:04:05Z"}]`, "[0].eventtime", `did you mean "eventTime"?`},
		{"error in element 3", `[` + eg(``) + `,` + eg(``) + `,` + eg(``) + `,` + strings.Replace(eg(``), "05Z", "05", 1) + `]`, "[3].eventTime", "RFC 3339"},
		{"duplicate key", `[` + eg(`,"id":"e2"`) + `]`, "[0].id", "duplicate key"},
		{"duplicate key in data", `[` + eg(`,"data":{"a":[{"b":1,"b":2}]}`) + `]`, "[0].data.a[0].b", "duplicate key"},
		{"invalid UTF-8 in data", "[" + eg(",\"data\":\"\xed\xa0\x80\"") + "]", "[0].data", "invalid UTF-8"},
		{"lone surrogate", `[` + eg(`,"dataVersion":"\udfff"`) + `]`, "[0].dataVersion", "unpaired UTF-16 surrogate"},
		{"single object", eg(``), "", "must be a JSON array of Event Grid events, not an object; send even a single event in an array"},
		{"empty array", `[]`, "", "must contain at least one event"},
		{"element not an object", `[` + eg(``) + `,[]]`, "[1]", "must be a JSON object (an Event Grid event), not an array"},
		{"empty body", ` `, "", "empty body; expected a JSON array of Event Grid events"},
		{"form-encoded body", `id=1&subject=s`, "", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ParseEventGridEvents([]byte(tc.doc), testTopic)
			if err == nil {
				t.Fatalf("accepted %s as %d events", tc.doc, len(evs))
			}
			wantProblem(t, err, tc.field, tc.msg)
		})
	}
}

func TestParseEventGridEventsTopicArgument(t *testing.T) {
	for _, topic := range []string{"", "/topics/a b", "/topics/\n"} {
		if _, err := ParseEventGridEvents([]byte(`[`+eg(``)+`]`), topic); err == nil {
			t.Errorf("topic %q accepted", topic)
		} else if _, ok := err.(*ValidationError); ok {
			t.Errorf("topic %q: a programming error reported as a *ValidationError: %v", topic, err)
		}
	}
}

func TestParseEventGridEventsConverts(t *testing.T) {
	for _, tc := range []struct{ name, doc, json string }{
		{"minimal", eg(``),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z"}`},
		{"every field", `{"topic":"/topics/orders","subject":"orders/17","eventType":"Shop.OrderPlaced","eventTime":"2026-01-02T15:04:05.1234567+01:00",` +
			`"id":"a1","data":{"total":12.50,"items":[{"sku":"X","qty":1}]},"dataVersion":"2.0","metadataVersion":"1"}`,
			`{"specversion":"1.0","id":"a1","source":"/topics/orders","type":"Shop.OrderPlaced","subject":"orders/17","time":"2026-01-02T15:04:05.1234567+01:00",` +
				`"datacontenttype":"application/json","dataversion":"2.0","data":{"total":12.50,"items":[{"sku":"X","qty":1}]}}`},
		{"+0000", strings.Replace(eg(``), "05Z", "05+0000", 1),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05+00:00","egeventtime":"2026-01-02T15:04:05+0000"}`},
		{"-0530 with fraction", strings.Replace(eg(``), "05Z", "05.5-0530", 1),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05.5-05:30","egeventtime":"2026-01-02T15:04:05.5-0530"}`},
		{"empty subject is left out", `{"id":"e1","subject":"","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}`,
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","time":"2026-01-02T15:04:05Z"}`},
		{"null optional fields", eg(`,"dataVersion":null,"metadataVersion":null,"topic":null`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z"}`},
		{"empty topic", eg(`,"topic":""`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z"}`},
		{"topic in another case", eg(`,"topic":"/TOPICS/Orders"`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z"}`},
		{"empty dataVersion kept", eg(`,"dataVersion":""`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z","dataversion":""}`},
		{"data null", eg(`,"data":null`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z","datacontenttype":"application/json","data":null}`},
		{"data string", eg(`,"data":"hello"`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z","datacontenttype":"application/json","data":"hello"}`},
		{"data numbers kept", eg(`,"data": [12345678901234567890, 1.10, -0, 1e400, 0.1E-7]`),
			`{"specversion":"1.0","id":"e1","source":"/topics/orders","type":"T","subject":"s","time":"2026-01-02T15:04:05Z","datacontenttype":"application/json","data":[12345678901234567890,1.10,-0,1e400,0.1E-7]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ParseEventGridEvents([]byte(`[`+tc.doc+`]`), testTopic)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || string(evs[0].JSON) != tc.json {
				t.Fatalf("canonical JSON\n got %s\nwant %s", evs[0].JSON, tc.json)
			}
			checkCanonical(t, evs[0])
		})
	}

	evs, err := ParseEventGridEvents([]byte(`[`+strings.Replace(eg(``), "05Z", "05+0100", 1)+`]`), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{JSON: evs[0].JSON, ID: "e1", Source: testTopic, Type: "T", Subject: "s", Time: time.Date(2026, 1, 2, 14, 4, 5, 0, time.UTC)}
	if !reflect.DeepEqual(evs[0], want) {
		t.Fatalf("event\n got %+v\nwant %+v", evs[0], want)
	}
}

// roundTripEvents are Event Grid events as publishers send them.
var roundTripEvents = []string{
	eg(``),
	eg(`,"data":{"a":1}`),
	`{"id":"1807","eventType":"recordInserted","subject":"myapp/vehicles/motorcycles","eventTime":"2017-08-10T21:03:07+00:00",` +
		`"data":{"make":"Ducati","model":"Monster"},"dataVersion":"1.0","metadataVersion":"1","topic":"/topics/orders"}`,
	// What Azure's CLI sample sends: date +%Y-%m-%dT%H:%M:%S%z.
	`{"id":"19571","eventType":"recordInserted","subject":"myapp/vehicles/motorcycles","eventTime":"2026-03-01T09:30:00+0000","data":{"make":"Contoso","model":"Monster"},"dataVersion":"1.0"}`,
	strings.Replace(eg(`,"data":[]`), "05Z", "05.999999999-1200", 1),
	strings.Replace(eg(``), "05Z", "05.1234567+0530", 1),
	strings.Replace(eg(``), "05Z", "05.1234567Z", 1),
	eg(`,"data":{"deep":{"er":{"still":[1,[2,[3,{"x":null}]]]}}}`),
	eg(`,"data":{"unicode":"héllo wörld 😀 \u00e9 \u2028 \ud83d\ude00","esc":"\"\\\/\b\f\n\r\t","html":"<a href=\"x\">&amp;</a>"}`),
	eg(`,"data":{"big":12345678901234567890,"bigger":123456789012345678901234567890,"f":1.10,"e":6.02e23,"E":1E-7,"neg":-0.0,"huge":1e400}`),
	eg(`,"data":"a string"`),
	eg(`,"data":42`),
	eg(`,"data":true`),
	eg(`,"data":null`),
	eg(`,"data":[]`),
	eg(`,"data":{}`),
	eg(`,"dataVersion":""`),
	eg(`,"dataVersion":"v2","metadataVersion":"1"`),
	`{"id":"e1","subject":"","eventType":"T","eventTime":"2026-01-02T15:04:05Z"}`,
	`{"id":"é/😀","subject":"ünïcode/<>&","eventType":"Ünï.Type","eventTime":"2026-01-02T15:04:05Z"}`,
	"{\n  \"data\" : { \"spaced\" : [ 1 , 2 ] } ,\n  \"eventTime\" : \"2026-01-02T15:04:05-0800\" ,\n  \"eventType\" : \"T\" , \"subject\" : \"s\" , \"id\" : \"x\"\n}",
}

// TestEventGridRoundTrip checks that ToEventGrid gives back each event as
// published (with what Event Grid adds), comparing decoded JSON with
// numbers as their literal text, and that number literals survive byte for
// byte.
func TestEventGridRoundTrip(t *testing.T) {
	batch := "[" + strings.Join(roundTripEvents, ",") + "]"
	evs, err := ParseEventGridEvents([]byte(batch), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(roundTripEvents) {
		t.Fatalf("got %d events, want %d", len(evs), len(roundTripEvents))
	}
	for i, ev := range evs {
		checkCanonical(t, ev)
		out, err := ToEventGrid(ev.JSON)
		if err != nil {
			t.Fatalf("[%d] ToEventGrid(%s): %v", i, ev.JSON, err)
		}
		want := decodeJSON(t, []byte(roundTripEvents[i])).(map[string]any)
		want["topic"] = testTopic
		want["metadataVersion"] = "1"
		if _, ok := want["dataVersion"]; !ok {
			want["dataVersion"] = ""
		}
		if got := decodeJSON(t, out); !reflect.DeepEqual(got, want) {
			t.Errorf("[%d] round trip changed the event:\n  sent %s\ncanonical %s\n   got %s", i, roundTripEvents[i], ev.JSON, out)
		}
		checkEventGridFixpoint(t, out)
	}
	// Number literals survive as sent, not merely as equal values.
	out, err := ToEventGrid(evs[9].JSON)
	if err != nil {
		t.Fatal(err)
	}
	for _, lit := range []string{"12345678901234567890", "123456789012345678901234567890", "1.10", "6.02e23", "1E-7", "-0.0", "1e400"} {
		if !bytes.Contains(out, []byte(":"+lit+",")) && !bytes.Contains(out, []byte(":"+lit+"}")) {
			t.Errorf("literal %s lost: %s", lit, out)
		}
	}
}

// decodeJSON decodes data with numbers as json.Number, so that 1.10 and 1.1
// differ.
func decodeJSON(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// checkEventGridFixpoint checks that an Event Grid event from ToEventGrid
// is accepted by ParseEventGridEvents and renders back the same.
func checkEventGridFixpoint(t testing.TB, out []byte) {
	t.Helper()
	if !json.Valid(out) || bytes.ContainsAny(out, "\r\n") {
		t.Fatalf("ToEventGrid gave %q", out)
	}
	var topic struct{ Topic string }
	if err := json.Unmarshal(out, &topic); err != nil {
		t.Fatal(err)
	}
	again, err := ParseEventGridEvents(append(append([]byte("["), out...), ']'), topic.Topic)
	if err != nil {
		t.Fatalf("ParseEventGridEvents(ToEventGrid output %s): %v", out, err)
	}
	out2, err := ToEventGrid(again[0].JSON)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("Event Grid rendering is not a fixpoint (%v):\n%s\n%s", err, out, out2)
	}
}

func TestToEventGridFromCloudEvents(t *testing.T) {
	for _, tc := range []struct{ name, ce, eg string }{
		{"minimal", ce(`,"time":"2026-01-02T15:04:05Z"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"","metadataVersion":"1"}`},
		{"subject and data", ce(`,"subject":"a/b","time":"2026-01-02T15:04:05+01:00","datacontenttype":"application/json","data":{"x":1.10}`),
			`{"topic":"/s","subject":"a/b","eventType":"t","eventTime":"2026-01-02T15:04:05+01:00","id":"e1","data":{"x":1.10},"dataVersion":"","metadataVersion":"1"}`},
		{"data_base64 becomes a string", ce(`,"time":"2026-01-02T15:04:05Z","datacontenttype":"image/png","data_base64":"iVBORw0KGgo="`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","data":"iVBORw0KGgo=","dataVersion":"","metadataVersion":"1"}`},
		{"text data", ce(`,"time":"2026-01-02T15:04:05Z","datacontenttype":"text/plain","data":"hi"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","data":"hi","dataVersion":"","metadataVersion":"1"}`},
		{"dataversion string", ce(`,"time":"2026-01-02T15:04:05Z","dataversion":"3"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"3","metadataVersion":"1"}`},
		{"dataversion integer", ce(`,"time":"2026-01-02T15:04:05Z","dataversion":3`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"3","metadataVersion":"1"}`},
		{"other extensions left out", ce(`,"time":"2026-01-02T15:04:05Z","partitionkey":"p","dataschema":"https://x/s","traceparent":"00-x"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"","metadataVersion":"1"}`},
		{"egeventtime of another instant ignored", ce(`,"time":"2026-01-02T15:04:05Z","egeventtime":"2026-01-02T15:04:06+0000"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"","metadataVersion":"1"}`},
		{"egeventtime not a time ignored", ce(`,"time":"2026-01-02T15:04:05Z","egeventtime":"soon"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T15:04:05Z","id":"e1","dataVersion":"","metadataVersion":"1"}`},
		{"egeventtime of the same instant used", ce(`,"time":"2026-01-02T15:04:05Z","egeventtime":"2026-01-02T16:04:05+0100"`),
			`{"topic":"/s","subject":"","eventType":"t","eventTime":"2026-01-02T16:04:05+0100","id":"e1","dataVersion":"","metadataVersion":"1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseCloudEvent([]byte(tc.ce))
			if err != nil {
				t.Fatal(err)
			}
			out, err := ToEventGrid(ev.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.eg {
				t.Fatalf("ToEventGrid\n got %s\nwant %s", out, tc.eg)
			}
			checkEventGridFixpoint(t, out)
		})
	}

	for _, bad := range []string{ce(``), `{"id":"e1"}`, `[]`, `not JSON`, `{"specversion":"1.0","id":1,"source":"/s","type":"t","time":"2026-01-02T15:04:05Z"}`} {
		if out, err := ToEventGrid([]byte(bad)); err == nil {
			t.Errorf("ToEventGrid(%s) = %s, want an error", bad, out)
		}
	}
}
