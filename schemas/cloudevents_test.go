package schemas

import (
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ce builds a valid structured CloudEvent with extra members appended.
func ce(extra string) string {
	return `{"specversion":"1.0","id":"e1","source":"/s","type":"t"` + extra + `}`
}

// eventCase is a document and a problem parsing must report.
type eventCase struct {
	name  string
	doc   string
	field string
	msg   string
}

// wantProblem checks that err is a *ValidationError with a FieldError on
// field whose message contains msg.
func wantProblem(t *testing.T, err error, field, msg string) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	for _, fe := range verr.Errors {
		if fe.Field == field && strings.Contains(fe.Message, msg) {
			return
		}
	}
	t.Fatalf("no problem %q containing %q in:\n%s", field, msg, strings.ReplaceAll(verr.Error(), "; ", "\n"))
}

func TestParseCloudEventRules(t *testing.T) {
	for _, tc := range []eventCase{
		// Required attributes.
		{"no specversion", `{"id":"1","source":"/s","type":"t"}`, "specversion", "required"},
		{"null specversion", `{"specversion":null,"id":"1","source":"/s","type":"t"}`, "specversion", "required"},
		{"specversion 0.3", `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, "specversion", `must be "1.0"`},
		{"specversion 1", `{"specversion":"1","id":"1","source":"/s","type":"t"}`, "specversion", `must be "1.0"`},
		{"specversion number", `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`, "specversion", "must be a string, not a number"},
		{"specversion integer", `{"specversion":1,"id":"1","source":"/s","type":"t"}`, "specversion", "must be a string, not a number"},
		{"no id", `{"specversion":"1.0","source":"/s","type":"t"}`, "id", "required"},
		{"empty id", `{"specversion":"1.0","id":"","source":"/s","type":"t"}`, "id", "must not be empty"},
		{"id number", `{"specversion":"1.0","id":1,"source":"/s","type":"t"}`, "id", "must be a string, not a number"},
		{"id boolean", `{"specversion":"1.0","id":true,"source":"/s","type":"t"}`, "id", "must be a string, not a boolean"},
		{"id with newline", `{"specversion":"1.0","id":"a\nb","source":"/s","type":"t"}`, "id", "control characters (found U+000A"},
		{"id with C1 control", `{"specversion":"1.0","id":"a\u0085","source":"/s","type":"t"}`, "id", "control characters (found U+0085"},
		{"id with noncharacter", `{"specversion":"1.0","id":"\ufffe","source":"/s","type":"t"}`, "id", "noncharacters (found U+FFFE"},
		{"no source", `{"specversion":"1.0","id":"1","type":"t"}`, "source", "required"},
		{"empty source", `{"specversion":"1.0","id":"1","source":"","type":"t"}`, "source", "must not be empty"},
		{"source with space", `{"specversion":"1.0","id":"1","source":"a b","type":"t"}`, "source", "must be a URI-reference (RFC 3986): ' ' at byte 1 must be percent-encoded"},
		{"source non-ASCII", `{"specversion":"1.0","id":"1","source":"/é","type":"t"}`, "source", "'é' at byte 1 must be percent-encoded"},
		{"source bad escape", `{"specversion":"1.0","id":"1","source":"/a%2","type":"t"}`, "source", "% at byte 2 does not start an escape"},
		{"source colon in first segment", `{"specversion":"1.0","id":"1","source":"1a:b","type":"t"}`, "source", "must be a URI-reference"},
		{"no type", `{"specversion":"1.0","id":"1","source":"/s"}`, "type", "required"},
		{"empty type", `{"specversion":"1.0","id":"1","source":"/s","type":""}`, "type", "must not be empty"},
		{"type object", `{"specversion":"1.0","id":"1","source":"/s","type":{}}`, "type", "must be a string, not an object"},

		// Optional attributes.
		{"empty subject", ce(`,"subject":""`), "subject", "must not be empty; leave it out"},
		{"subject number", ce(`,"subject":5`), "subject", "must be a string, not a number"},
		{"time not RFC 3339", ce(`,"time":"2026-01-02 15:04:05Z"`), "time", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"},
		{"time without offset", ce(`,"time":"2026-01-02T15:04:05"`), "time", "RFC 3339"},
		{"time offset without colon", ce(`,"time":"2026-01-02T15:04:05+0000"`), "time", "RFC 3339"},
		{"time impossible day", ce(`,"time":"2026-02-30T15:04:05Z"`), "time", "RFC 3339"},
		{"time offset +24:00", ce(`,"time":"2026-01-02T15:04:05+24:00"`), "time", "RFC 3339"},
		{"time lower-case t", ce(`,"time":"2026-01-02t15:04:05Z"`), "time", "RFC 3339"},
		{"time empty", ce(`,"time":""`), "time", "must not be empty"},
		{"time number", ce(`,"time":1767366245`), "time", "must be a string, not a number"},
		{"datacontenttype empty", ce(`,"datacontenttype":""`), "datacontenttype", "must not be empty"},
		{"datacontenttype no slash", ce(`,"datacontenttype":"json"`), "datacontenttype", "must be a media type (RFC 2046)"},
		{"datacontenttype bad parameter", ce(`,"datacontenttype":"text/plain; charset"`), "datacontenttype", "must be a media type"},
		{"dataschema relative", ce(`,"dataschema":"/schemas/a"`), "dataschema", "must be an absolute URI (RFC 3986), such as https://example.com/schemas/order.json (found no scheme)"},
		{"dataschema space", ce(`,"dataschema":"https://x/a b"`), "dataschema", "must be a URI (RFC 3986): ' ' at byte 11"},
		{"dataschema empty", ce(`,"dataschema":""`), "dataschema", "must not be empty"},
		{"partitionkey empty", ce(`,"partitionkey":""`), "partitionkey", "must not be empty"},
		{"partitionkey number", ce(`,"partitionkey":7`), "partitionkey", "must be a string, not a number"},

		// Attribute names.
		{"upper-case core name", ce(`,"Subject":"x"`), "Subject", `did you mean "subject"? (attribute names are case-sensitive)`},
		{"upper-case specversion", `{"SpecVersion":"1.0","id":"1","source":"/s","type":"t"}`, "SpecVersion", `did you mean "specversion"?`},
		{"upper-case extension", ce(`,"myExt":"x"`), "myExt", "1 to 20 lower-case letters (a-z) and digits (0-9)"},
		{"underscore", ce(`,"my_ext":"x"`), "my_ext", "not a valid attribute name"},
		{"dash", ce(`,"my-ext":"x"`), "my-ext", "not a valid attribute name"},
		{"21 characters", ce(`,"abcdefghijklmnopqrstu":"x"`), "abcdefghijklmnopqrstu", "not a valid attribute name"},
		{"empty name", ce(`,"":"x"`), `[""]`, "not a valid attribute name"},
		{"non-ASCII name", ce(`,"é":"x"`), `["é"]`, "not a valid attribute name"},
		{"Data", ce(`,"Data":1`), "Data", `did you mean "data"?`},
		{"data_Base64", ce(`,"data_Base64":"AA=="`), "data_Base64", `did you mean "data_base64"?`},

		// Extension values.
		{"extension fraction", ce(`,"ext":1.5`), "ext", "must be an integer from -2147483648 to 2147483647"},
		{"extension 1.0", ce(`,"ext":1.0`), "ext", "without fraction or exponent"},
		{"extension exponent", ce(`,"ext":1e3`), "ext", "without fraction or exponent"},
		{"extension above int32", ce(`,"ext":2147483648`), "ext", "from -2147483648 to 2147483647"},
		{"extension below int32", ce(`,"ext":-2147483649`), "ext", "from -2147483648 to 2147483647"},
		{"extension object", ce(`,"ext":{"a":1}`), "ext", "must be a string, a boolean or an integer, not an object"},
		{"extension array", ce(`,"ext":[1]`), "ext", "not an array"},
		{"extension control character", ce(`,"ext":"\u0000"`), "ext", "control characters"},

		// data and data_base64.
		{"both data members", ce(`,"data":{},"data_base64":"AA=="`), "data_base64", "not allowed together with data"},
		{"data null and data_base64", ce(`,"data":null,"data_base64":"AA=="`), "data_base64", "not allowed together with data"},
		{"data_base64 invalid", ce(`,"data_base64":"not base64!"`), "data_base64", "must be base64"},
		{"data_base64 unpadded", ce(`,"data_base64":"AA"`), "data_base64", "must be base64"},
		{"data_base64 URL alphabet", ce(`,"data_base64":"-_8="`), "data_base64", "must be base64"},
		{"data_base64 line break", ce(`,"data_base64":"AA\r\n=="`), "data_base64", "no line breaks"},
		{"data_base64 non-zero padding bits", ce(`,"data_base64":"AB=="`), "data_base64", "must be base64"},
		{"data_base64 number", ce(`,"data_base64":5`), "data_base64", "must be a string of base64-encoded data, not a number"},

		// JSON.
		{"duplicate attribute", ce(`,"id":"e2"`), "id", "duplicate key"},
		{"duplicate by escape", ce(`,"\u0069d":"e2"`), "id", "duplicate key"},
		{"duplicate in data", ce(`,"data":{"a":{"b":1,"b":2}}`), "data.a.b", "duplicate key"},
		{"duplicate in data array", ce(`,"data":[{"x":1},{"y":1,"y":1}]`), "data[1].y", "duplicate key"},
		{"invalid UTF-8 in data", ce(",\"data\":{\"a\":\"\xff\"}"), "data", "invalid UTF-8 at byte"},
		{"invalid UTF-8 in an attribute", ce(",\"ext\":\"\xc0\xaf\""), "ext", "invalid UTF-8"},
		{"invalid UTF-8 in a name", ce(",\"e\xffxt\":1"), "", "invalid UTF-8"},
		{"lone surrogate", ce(`,"subject":"\ud800"`), "subject", "unpaired UTF-16 surrogate"},
		{"lone surrogate in data", ce(`,"data":["\udc00"]`), "data", "unpaired UTF-16 surrogate"},
		{"nested too deep", ce(`,"data":` + strings.Repeat("[", 64) + strings.Repeat("]", 64)), "data" + strings.Repeat("[0]", 63), "nested more than 64 levels deep"},
		{"array", `[` + ce(``) + `]`, "", "must be a JSON object (one CloudEvent), not an array; send a batch as application/cloudevents-batch+json"},
		{"string", `"x"`, "", "must be a JSON object (one CloudEvent), not a string"},
		{"empty", ``, "", "empty body"},
		{"trailing data", ce(``) + `{}`, "", "unexpected data after the JSON object"},
		{"syntax", `{"id":}`, "id", "invalid JSON at byte"},
		{"truncated", `{"specversion":"1.0"`, "", "unexpected end of input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseCloudEvent([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted %s as %s", tc.doc, ev.JSON)
			}
			wantProblem(t, err, tc.field, tc.msg)
		})
	}
}

func TestParseCloudEventAccepts(t *testing.T) {
	for _, tc := range []struct{ name, doc, json string }{
		{"minimal", ce(``), `{"specversion":"1.0","id":"e1","source":"/s","type":"t"}`},
		{"whitespace", " {\n\t\"specversion\" : \"1.0\" , \"type\":\"t\",\"id\":\"e1\",\"source\":\"/s\" }\n",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t"}`},
		{"null attributes are unset", ce(`,"subject":null,"time":null,"datacontenttype":null,"dataschema":null,"ext":null,"data_base64":null`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t"}`},
		{"absolute source", `{"specversion":"1.0","id":"e1","source":"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66","type":"t"}`,
			`{"specversion":"1.0","id":"e1","source":"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66","type":"t"}`},
		{"source like a phone number", `{"specversion":"1.0","id":"e1","source":"1-555-123-4567","type":"t"}`,
			`{"specversion":"1.0","id":"e1","source":"1-555-123-4567","type":"t"}`},
		{"extensions sorted, typed", ce(`,"zeta":"z","alpha":true,"n":-2147483648,"m":2147483647,"z0":-0,"e":""`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","alpha":true,"e":"","m":2147483647,"n":-2147483648,"z0":0,"zeta":"z"}`},
		{"20-character name", ce(`,"abcdefghijklmnopqrst":1`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","abcdefghijklmnopqrst":1}`},
		{"string escapes re-encoded", `{"specversion":"1.0","id":"\u0065\/1","source":"/s","type":"<a&b>\"\\\u00e9\u2028"}`,
			`{"specversion":"1.0","id":"e/1","source":"/s","type":"<a&b>\"\\é` + "\u2028" + `"}`},
		{"data kept exactly", ce(`,"data": {"big": 12345678901234567890, "f": 1.10, "e": 1E+2, "neg": -0.0, "s": "\u00e9\n<>", "u": "😀", "n": [null, true, {}]}`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":{"big":12345678901234567890,"f":1.10,"e":1E+2,"neg":-0.0,"s":"\u00e9\n<>","u":"😀","n":[null,true,{}]}}`},
		{"data beyond float64", ce(`,"data":1e400`), `{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":1e400}`},
		{"data null is data", ce(`,"data":null`), `{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":null}`},
		{"data string with non-JSON type", ce(`,"datacontenttype":"application/xml","data":"<much wow=\"xml\"/>"`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/xml","data":"<much wow=\"xml\"/>"}`},
		{"data_base64", ce(`,"datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}`},
		{"empty data_base64", ce(`,"data_base64":""`), `{"specversion":"1.0","id":"e1","source":"/s","type":"t","data_base64":""}`},
		{"dataschema with fragment", ce(`,"dataschema":"https://example.com/s.json#/defs/Order"`),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","dataschema":"https://example.com/s.json#/defs/Order"}`},
		{"data 63 deep", ce(`,"data":` + strings.Repeat("[", 63) + strings.Repeat("]", 63)),
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseCloudEvent([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.JSON) != tc.json {
				t.Fatalf("canonical JSON\n got %s\nwant %s", ev.JSON, tc.json)
			}
			checkCanonical(t, ev)
		})
	}
}

// TestParseCloudEventKeepsEveryAttribute parses an event with every core
// attribute and several extensions and checks the canonical form and the
// Event fields.
func TestParseCloudEventKeepsEveryAttribute(t *testing.T) {
	doc := `{
		"data": {"appinfoA": "abc", "appinfoB": 123, "appinfoC": true},
		"comexampleothervalue": 5,
		"comexampleextension1": "value",
		"partitionkey": "order-17",
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"flag": false,
		"datacontenttype": "application/json; charset=utf-8",
		"dataschema": "https://example.com/schemas/app.json",
		"time": "2018-04-05T17:31:00.123+02:00",
		"subject": "larger-context",
		"type": "com.example.someevent",
		"source": "https://example.com/mycontext",
		"id": "C234-1234-1234",
		"specversion": "1.0"
	}`
	ev, err := ParseCloudEvent([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"C234-1234-1234","source":"https://example.com/mycontext","type":"com.example.someevent",` +
		`"subject":"larger-context","time":"2018-04-05T17:31:00.123+02:00","datacontenttype":"application/json; charset=utf-8",` +
		`"dataschema":"https://example.com/schemas/app.json","comexampleextension1":"value","comexampleothervalue":5,"flag":false,` +
		`"partitionkey":"order-17","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",` +
		`"data":{"appinfoA":"abc","appinfoB":123,"appinfoC":true}}`
	if string(ev.JSON) != want {
		t.Fatalf("canonical JSON\n got %s\nwant %s", ev.JSON, want)
	}
	wantEv := Event{
		JSON:         ev.JSON,
		ID:           "C234-1234-1234",
		Source:       "https://example.com/mycontext",
		Type:         "com.example.someevent",
		Subject:      "larger-context",
		Time:         time.Date(2018, 4, 5, 15, 31, 0, 123e6, time.UTC),
		PartitionKey: "order-17",
	}
	if !reflect.DeepEqual(ev, wantEv) {
		t.Fatalf("event\n got %+v\nwant %+v", ev, wantEv)
	}
	checkCanonical(t, ev)
}

// checkCanonical checks that an event's JSON is one line and parses back
// to the same event.
func checkCanonical(t testing.TB, ev Event) {
	t.Helper()
	if strings.ContainsAny(string(ev.JSON), "\n\r") {
		t.Fatalf("canonical JSON has a line break: %q", ev.JSON)
	}
	again, err := ParseCloudEvent(ev.JSON)
	if err != nil {
		t.Fatalf("canonical JSON %s does not parse: %v", ev.JSON, err)
	}
	if !reflect.DeepEqual(again, ev) {
		t.Fatalf("canonical JSON parses to another event:\n got %+v\nwant %+v", again, ev)
	}
}

func TestParseCloudEventBatch(t *testing.T) {
	good := ce(``)
	bad := `{"specversion":"0.3","id":"e4","source":"/s","type":"t"}`
	evs, err := ParseCloudEventBatch([]byte(`[` + good + `,` + good + `,` + ce(`,"data":[1]`) + `]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || string(evs[2].JSON) != `{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":[1]}` {
		t.Fatalf("got %d events, last %s", len(evs), evs[len(evs)-1].JSON)
	}
	for _, ev := range evs {
		checkCanonical(t, ev)
	}

	for _, tc := range []eventCase{
		{"error in element 3", `[` + good + `,` + good + `,` + good + `,` + bad + `]`, "[3].specversion", `must be "1.0"`},
		{"missing time format in element 0", `[` + ce(`,"time":"now"`) + `]`, "[0].time", "RFC 3339"},
		{"name in element 1", `[` + good + `,` + ce(`,"Foo":1`) + `]`, "[1].Foo", "not a valid attribute name"},
		{"duplicate in element 2 data", `[` + good + `,` + good + `,` + ce(`,"data":{"a":1,"a":1}`) + `]`, "[2].data.a", "duplicate key"},
		{"invalid UTF-8 in element 1", "[" + good + "," + ce(",\"data\":\"\xff\"") + "]", "[1].data", "invalid UTF-8"},
		{"element not an object", `[` + good + `,"x"]`, "[1]", "must be a JSON object (a CloudEvent), not a string"},
		{"empty", `[]`, "", "must contain at least one event"},
		{"object", good, "", "must be a JSON array of CloudEvents, not an object; send a single event as application/cloudevents+json"},
		{"null", `null`, "", "must be a JSON array of CloudEvents, not null"},
		{"trailing data", `[` + good + `] []`, "", "unexpected data after the JSON array"},
		{"trailing comma", `[` + good + `,]`, "[1]", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ParseCloudEventBatch([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted %s as %d events", tc.doc, len(evs))
			}
			wantProblem(t, err, tc.field, tc.msg)
		})
	}
}

func TestParseCloudEventBatchReportsEveryEvent(t *testing.T) {
	doc := `[` + ce(`,"time":"x"`) + `,` + ce(``) + `,` + `{"specversion":"1.0","source":"/s","type":"t"}` + `]`
	_, err := ParseCloudEventBatch([]byte(doc))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v", err)
	}
	want := []FieldError{
		{Field: "[0].time", Message: timeMessage},
		{Field: "[2].id", Message: "required"},
	}
	if !reflect.DeepEqual(verr.Errors, want) {
		t.Fatalf("errors\n got %#v\nwant %#v", verr.Errors, want)
	}

	// A large batch of bad events reports at most maxDecodeErrors problems.
	many := `[` + strings.Repeat(`{"specversion":"1.0"},`, 100) + ce(``) + `]`
	_, err = ParseCloudEventBatch([]byte(many))
	if !errors.As(err, &verr) || len(verr.Errors) != maxDecodeErrors {
		t.Fatalf("got %v", err)
	}
}

func binaryHeaders(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var requiredHeaders = []string{"ce-specversion", "1.0", "ce-id", "e1", "ce-source", "/s", "ce-type", "t"}

func TestParseCloudEventBinary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		body    string
		json    string
	}{
		{"no body", nil, "", `{"specversion":"1.0","id":"e1","source":"/s","type":"t"}`},
		{"JSON body", []string{"Content-Type", "application/json"}, "{\n  \"a\": 1.10,\n  \"b\": 12345678901234567890\n}",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":1.10,"b":12345678901234567890}}`},
		{"+json body with parameters", []string{"Content-Type", "application/cloudevents+json; charset=utf-8"}, `"just a string"`,
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/cloudevents+json; charset=utf-8","data":"just a string"}`},
		{"text body", []string{"Content-Type", "text/plain"}, "hello",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"text/plain","data_base64":"aGVsbG8="}`},
		{"binary body without a type", nil, "\x00\x01\xff",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","data_base64":"AAH/"}`},
		{"JSON type, invalid JSON", []string{"Content-Type", "application/json"}, `{"a":`,
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"eyJhIjo="}`},
		{"JSON type, duplicate keys", []string{"Content-Type", "application/json"}, `{"a":1,"a":2}`,
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"eyJhIjoxLCJhIjoyfQ=="}`},
		{"JSON type, invalid UTF-8", []string{"Content-Type", "application/json"}, "\"\xff\"",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"Iv8i"}`},
		{"JSON type, two values", []string{"Content-Type", "application/json"}, `1 2`,
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"MSAy"}`},
		{"percent-encoded values", []string{"ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80", "ce-comment", "100%25%20sure"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"Euro € 😀","comment":"100% sure"}`},
		{"lower-case percent-encoding", []string{"ce-subject", "%e2%82%ac"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"€"}`},
		{"needlessly percent-encoded", []string{"ce-subject", "%41%42C"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"ABC"}`},
		{"one round of decoding", []string{"ce-subject", "%2541"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"%41"}`},
		{"quoted string", []string{"ce-subject", `"a \"quoted\" \\ value"`}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"a \"quoted\" \\ value"}`},
		{"quoted then percent-decoded", []string{"ce-subject", `"50%25"`}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"50%"}`},
		{"extensions are strings, names lower-cased", []string{"Ce-MyExt", "5", "CE-Flag", "true", "ce-partitionkey", "k1"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","flag":"true","myext":"5","partitionkey":"k1"}`},
		{"time", []string{"ce-time", "2018-04-05T03:56:24Z"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t","time":"2018-04-05T03:56:24Z"}`},
		{"empty extension", []string{"ce-ext", ""}, "", `{"specversion":"1.0","id":"e1","source":"/s","type":"t","ext":""}`},
		{"other headers ignored", []string{"Authorization", "x", "aeg-sas-key", "y", "Cee-Id", "z"}, "",
			`{"specversion":"1.0","id":"e1","source":"/s","type":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := binaryHeaders(append(append([]string{}, requiredHeaders...), tc.headers...)...)
			ev, err := ParseCloudEventBinary(h, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.JSON) != tc.json {
				t.Fatalf("canonical JSON\n got %s\nwant %s", ev.JSON, tc.json)
			}
			checkCanonical(t, ev)
		})
	}

	ev, err := ParseCloudEventBinary(binaryHeaders(append(append([]string{}, requiredHeaders...),
		"ce-time", "2018-04-05T03:56:24+01:00", "ce-subject", "s%2F1", "ce-partitionkey", "p")...), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{JSON: ev.JSON, ID: "e1", Source: "/s", Type: "t", Subject: "s/1", Time: time.Date(2018, 4, 5, 2, 56, 24, 0, time.UTC), PartitionKey: "p"}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("event\n got %+v\nwant %+v", ev, want)
	}

	// A binary body survives the trip through data_base64.
	body := []byte{0, 1, 2, 0xfe, 0xff}
	ev, err = ParseCloudEventBinary(binaryHeaders(requiredHeaders...), body)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(body)
	if !strings.Contains(string(ev.JSON), `"data_base64":"`+b64+`"`) {
		t.Fatalf("got %s", ev.JSON)
	}
}

func TestParseCloudEventBinaryRules(t *testing.T) {
	without := func(name string) []string {
		var kv []string
		for i := 0; i < len(requiredHeaders); i += 2 {
			if requiredHeaders[i] != name {
				kv = append(kv, requiredHeaders[i], requiredHeaders[i+1])
			}
		}
		return kv
	}
	for _, tc := range []struct {
		name    string
		headers []string
		field   string
		msg     string
	}{
		{"no id", without("ce-id"), "ce-id", "required"},
		{"no specversion", without("ce-specversion"), "ce-specversion", "required"},
		{"no source", without("ce-source"), "ce-source", "required"},
		{"no type", without("ce-type"), "ce-type", "required"},
		{"specversion 0.3", append(without("ce-specversion"), "ce-specversion", "0.3"), "ce-specversion", `must be "1.0"`},
		{"empty id", append(without("ce-id"), "ce-id", ""), "ce-id", "must not be empty"},
		{"id twice", append(requiredHeaders, "ce-id", "e2"), "ce-id", "sent more than once"},
		{"datacontenttype header", append(requiredHeaders, "ce-datacontenttype", "application/json"), "ce-datacontenttype", "the Content-Type header is the datacontenttype"},
		{"bad name", append(requiredHeaders, "ce-my_ext", "x"), "ce-my_ext", "not a valid attribute name"},
		{"long name", append(requiredHeaders, "ce-abcdefghijklmnopqrstu", "x"), "ce-abcdefghijklmnopqrstu", "not a valid attribute name"},
		{"no name", append(requiredHeaders, "ce-", "x"), "ce-", "not a valid attribute name"},
		{"data", append(requiredHeaders, "ce-data", "x"), "ce-data", `"data" is reserved`},
		{"stray percent", append(requiredHeaders, "ce-subject", "100%"), "ce-subject", "% that does not start a percent-encoded byte"},
		{"bad hex", append(requiredHeaders, "ce-subject", "%zz"), "ce-subject", "% that does not start"},
		{"overlong UTF-8", append(requiredHeaders, "ce-subject", "%C0%A0"), "ce-subject", "must be UTF-8 once percent-decoded"},
		{"truncated UTF-8", append(requiredHeaders, "ce-subject", "%E2%82"), "ce-subject", "must be UTF-8"},
		{"encoded control character", append(requiredHeaders, "ce-subject", "a%0Ab"), "ce-subject", "control characters"},
		{"unclosed quote", append(requiredHeaders, "ce-subject", `"abc`), "ce-subject", "quoted string without its closing"},
		{"bad time", append(requiredHeaders, "ce-time", "yesterday"), "ce-time", "RFC 3339"},
		{"bad source", append(without("ce-source"), "ce-source", "a%20b c"), "ce-source", "URI-reference"},
		{"bad dataschema", append(requiredHeaders, "ce-dataschema", "/rel"), "ce-dataschema", "absolute URI"},
		{"bad content type", append(requiredHeaders, "Content-Type", "json"), "Content-Type", "media type"},
		{"two content types", append(requiredHeaders, "Content-Type", "text/plain", "Content-Type", "text/html"), "Content-Type", "sent more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseCloudEventBinary(binaryHeaders(tc.headers...), []byte("x"))
			if err == nil {
				t.Fatalf("accepted as %s", ev.JSON)
			}
			wantProblem(t, err, tc.field, tc.msg)
		})
	}
}

func TestStampTime(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 120000000, time.FixedZone("CEST", 2*3600))
	ev, err := ParseCloudEvent([]byte(ce(`,"zz":1,"subject":"s","data":{"a": 1}`)))
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := StampTime(ev, at)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"s","time":"2026-05-06T05:08:09.12Z","zz":1,"data":{"a":1}}`
	if string(stamped.JSON) != want || !stamped.Time.Equal(at) || stamped.Time.Location() != time.UTC {
		t.Fatalf("stamped\n got %s %v\nwant %s", stamped.JSON, stamped.Time, want)
	}
	checkCanonical(t, stamped)
	if _, err := ToEventGrid(stamped.JSON); err != nil {
		t.Fatal(err)
	}
	// An event with a time keeps it.
	again, err := StampTime(stamped, at.Add(time.Hour))
	if err != nil || !reflect.DeepEqual(again, stamped) {
		t.Fatalf("restamped: %v %s", err, again.JSON)
	}
	// A monotonic clock reading does not survive into Event.Time.
	now, err := StampTime(ev, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkCanonical(t, now)
}
