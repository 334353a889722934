package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeCase is a document and the first problem decoding must report.
type decodeCase struct {
	name  string
	doc   string
	field string
	msg   string
}

// sub builds a subscription document around a destination properties body.
func sub(destProps string) string {
	return `{"properties":{"destination":{"endpointType":"WebHook","properties":` + destProps + `}}}`
}

// subFilter builds a subscription document with the given filter.
func subFilter(filter string) string {
	return `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"https://x"}},"filter":` + filter + `}}`
}

func TestDecodeStrict(t *testing.T) {
	topicCases := []decodeCase{
		{"unknown field", `{"name":"t1","colour":"red"}`, "colour", "unknown field; expected one of name, properties, etag"},
		{"wrong case top level", `{"Name":"t1"}`, "Name", `did you mean "name"?`},
		{"wrong case nested", `{"properties":{"inputschema":"EventGridSchema"}}`, "properties.inputschema", `did you mean "inputSchema"?`},
		{"duplicate key", `{"name":"a","name":"b"}`, "name", "duplicate key"},
		{"duplicate key by escape", `{"name":"a","n\u0061me":"b"}`, "name", "duplicate key"},
		{"duplicate nested key", `{"properties":{"partitions":1,"partitions":2}}`, "properties.partitions", "duplicate key"},
		{"invalid UTF-8", "{\"name\":\"t\xff1\"}", "", "invalid UTF-8 at byte 10"},
		{"invalid UTF-8 in a key", "{\"n\xc3\":1}", "", "invalid UTF-8 at byte 3"},
		{"overlong UTF-8", "{\"name\":\"\xc0\xaf\"}", "", "invalid UTF-8"},
		{"lone high surrogate", `{"name":"a\ud800b"}`, "", "unpaired UTF-16 surrogate \\ud800"},
		{"lone low surrogate", `{"name":"\uDC00"}`, "", "unpaired UTF-16 surrogate"},
		{"reversed surrogates", `{"name":"\udc00\ud800"}`, "", "unpaired UTF-16 surrogate"},
		{"trailing garbage", `{"name":"abc"} x`, "", "unexpected data after the JSON object"},
		{"second object", `{"name":"abc"}{}`, "", "unexpected data after the JSON object"},
		{"trailing comma", `{"name":"abc"},`, "", "unexpected data after the JSON object"},
		{"empty", ``, "", "empty document"},
		{"whitespace", " \n", "", "empty document"},
		{"null", `null`, "", "must be a JSON object, not null"},
		{"array", `[{"name":"abc"}]`, "", "must be a JSON object, not an array"},
		{"truncated", `{"name":`, "name", "unexpected end of input"},
		{"syntax error", `{"name" "abc"}`, "name", "invalid JSON at byte 8: invalid character"},
		{"trailing comma in object", `{"name":"abc",}`, "", "invalid JSON"},
		{"BOM", "\ufeff{}", "", "invalid JSON"},
		{"name number", `{"name":5}`, "name", "must be a string, not a number"},
		{"name null", `{"name":null}`, "name", "must be a string, not null"},
		{"properties array", `{"properties":[]}`, "properties", "must be an object, not an array"},
		{"properties null", `{"properties":null}`, "properties", "must be an object, not null"},
		{"partitions string", `{"properties":{"partitions":"4"}}`, "properties.partitions", "must be an integer, not a string"},
		{"partitions fraction", `{"properties":{"partitions":4.5}}`, "properties.partitions", "must be an integer, not 4.5"},
		{"partitions exponent", `{"properties":{"partitions":1e1}}`, "properties.partitions", "must be an integer, not 1e1"},
		{"partitions huge", `{"properties":{"partitions":123456789012345678901234567890}}`, "properties.partitions", "out of range"},
		{"partitions bool", `{"properties":{"partitions":true}}`, "properties.partitions", "must be an integer, not a boolean"},
		{"createdAt not a time", `{"properties":{"createdAt":"yesterday"}}`, "properties.createdAt", "RFC 3339"},
		{"createdAt number", `{"properties":{"createdAt":5}}`, "properties.createdAt", "must be a string (an RFC 3339 time), not a number"},
		{"odd key", `{"a.b":1}`, `["a.b"]`, "unknown field"},
		{"unknown nested object", `{"properties":{"extra":{"a":1,"a":2}}}`, "properties.extra", "unknown field"},
	}
	subCases := []decodeCase{
		{"unknown field deep", sub(`{"endpointURL":"https://x"}`), "properties.destination.properties.endpointURL", `did you mean "endpointUrl"?`},
		{"duplicate in a filter value", subFilter(`{"advancedFilters":[{"operatorType":"BoolEquals","key":"k","value":{"a":1,"a":2}}]}`),
			"properties.filter.advancedFilters[0].value.a", "duplicate key"},
		{"duplicate in nested arrays", subFilter(`{"advancedFilters":[{"operatorType":"NumberIn","key":"k","values":[1,[{"b":1,"b":1}]]}]}`),
			"properties.filter.advancedFilters[0].values[1][0].b", "duplicate key"},
		{"unknown field in array element", subFilter(`{"advancedFilters":[{},{"operatortype":"IsNotNull"}]}`),
			"properties.filter.advancedFilters[1].operatortype", `did you mean "operatorType"?`},
		{"float out of range", subFilter(`{"advancedFilters":[{"operatorType":"NumberIn","key":"k","values":[1e400]}]}`),
			"properties.filter.advancedFilters[0].values[0]", "out of the range of a 64-bit float"},
		{"labels string", `{"properties":{"destination":{},"labels":"a"}}`, "properties.labels", "must be an array, not a string"},
		{"labels of numbers", `{"properties":{"labels":["a",1]}}`, "properties.labels[1]", "must be a string, not a number"},
		{"bool as string", subFilter(`{"isSubjectCaseSensitive":"true"}`), "properties.filter.isSubjectCaseSensitive", "must be a boolean, not a string"},
		{"filter array", subFilter(`[]`), "properties.filter", "must be an object, not an array"},
		{"batch size fraction", sub(`{"maxEventsPerBatch":1.0}`), "properties.destination.properties.maxEventsPerBatch", "must be an integer, not 1.0"},
		{"expiration not RFC 3339", `{"properties":{"expirationTimeUtc":"2030-01-01 00:00:00"}}`, "properties.expirationTimeUtc", "RFC 3339"},
		{"expiration one-digit hour", `{"properties":{"expirationTimeUtc":"2030-10-01T0:00:00Z"}}`, "properties.expirationTimeUtc", "RFC 3339"},
		{"expiration before year 0 in UTC", `{"properties":{"expirationTimeUtc":"0000-01-01T00:30:00+01:00"}}`, "properties.expirationTimeUtc", "from 0000 to 9999 UTC"},
		{"expiration after 9999 in UTC", `{"properties":{"expirationTimeUtc":"9999-12-31T23:30:00-01:00"}}`, "properties.expirationTimeUtc", "from 0000 to 9999 UTC"},
		{"expiration month 13", `{"properties":{"expirationTimeUtc":"2030-13-01T00:00:00Z"}}`, "properties.expirationTimeUtc", "RFC 3339"},
		{"too deep", subFilter(`{"advancedFilters":[{"value":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`),
			"properties.filter.advancedFilters[0].value" + strings.Repeat("[0]", 28), "nested more than 32 levels deep"},
	}
	run := func(t *testing.T, tc decodeCase, decode func([]byte) error) {
		err := decode([]byte(tc.doc))
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Errors) == 0 {
			t.Fatalf("error = %v, want a *ValidationError", err)
		}
		got := verr.Errors[0]
		if got.Field != tc.field || !strings.Contains(got.Message, tc.msg) {
			t.Errorf("first error = %q: %q, want %q: …%s…", got.Field, got.Message, tc.field, tc.msg)
		}
	}
	for _, tc := range topicCases {
		t.Run("topic/"+tc.name, func(t *testing.T) {
			run(t, tc, func(b []byte) error { _, err := DecodeTopic(b); return err })
		})
		// The envelope is the same for subscriptions where the field exists.
		if !strings.Contains(tc.doc, `"properties":{"`) {
			t.Run("subscription/"+tc.name, func(t *testing.T) {
				tc := tc
				tc.msg = strings.ReplaceAll(tc.msg, "name, properties, etag", "name, topic, properties, etag")
				run(t, tc, func(b []byte) error { _, err := DecodeSubscription(b); return err })
			})
		}
	}
	for _, tc := range subCases {
		t.Run("subscription/"+tc.name, func(t *testing.T) {
			run(t, tc, func(b []byte) error { _, err := DecodeSubscription(b); return err })
		})
	}
}

func TestDecodeReportsEveryStructuralProblem(t *testing.T) {
	doc := `{"Name":"x","properties":{"partitions":"4","retention":1,"inputSchema":1}, "extra": true}`
	_, err := DecodeTopic([]byte(doc))
	want := `Name: unknown field; did you mean "name"? (names are case-sensitive); ` +
		`properties.partitions: must be an integer, not a string; ` +
		`properties.retention: unknown field; expected one of inputSchema, partitions, retentionInDays, endpoint, provisioningState, createdAt; ` +
		`properties.inputSchema: must be a string, not a number; ` +
		`extra: unknown field; expected one of name, properties, etag`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	// The count is bounded.
	var b strings.Builder
	b.WriteString(`{"name":"x"`)
	for i := range 100 {
		b.WriteString(`,"x` + strings.Repeat("y", i) + `":1`)
	}
	b.WriteString(`}`)
	_, err = DecodeTopic([]byte(b.String()))
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != maxDecodeErrors {
		t.Errorf("got %v, want %d errors", err, maxDecodeErrors)
	}
}

func TestDecodeAccepts(t *testing.T) {
	for _, doc := range []string{
		`{}`,
		" \t\r\n{}\n ",
		`{"name":"😀"}`,
		`{"name":"\ud83d\ude00"}`,
		`{"name":"a\\ud800"}`, // an escaped backslash, then plain text
		`{"name":"\\\ud83d\ude00"}`,
		`{"properties":{"createdAt":null}}`,
		`{"properties":{"partitions":-0}}`,
	} {
		if _, err := DecodeTopic([]byte(doc)); err != nil {
			t.Errorf("DecodeTopic(%s): %v", doc, err)
		}
	}
	for _, doc := range []string{
		`{"properties":{"filter":null,"retryPolicy":null,"deadLetterDestination":null,"labels":null,"expirationTimeUtc":null}}`,
		`{"properties":{"labels":[],"destination":{"properties":{"deliveryAttributeMappings":[]}}}}`,
		subFilter(`{"advancedFilters":[{"operatorType":"BoolEquals","key":"k","value":{"a":{"a":[1,{"a":null}]}}}]}`),
		subFilter(`{"advancedFilters":[{"value":null,"values":null}]}`),
	} {
		if _, err := DecodeSubscription([]byte(doc)); err != nil {
			t.Errorf("DecodeSubscription(%s): %v", doc, err)
		}
	}
}

func TestDecodeDropsOutputOnlyFields(t *testing.T) {
	topic, err := DecodeTopic([]byte(`{"name":"orders","etag":"\"v1\"","properties":{"inputSchema":"EventGridSchema",
		"partitions":4,"retentionInDays":7,"endpoint":"https://sluice/topics/orders/api/events",
		"provisioningState":"Succeeded","createdAt":"2029-01-01T00:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Topic{Name: "orders", Properties: TopicProperties{InputSchema: EventGridSchema, Partitions: 4, RetentionInDays: 7}}
	if !reflect.DeepEqual(topic, want) {
		t.Errorf("topic = %+v, want %+v", topic, want)
	}
	s, err := DecodeSubscription([]byte(`{"name":"s1","topic":"orders","etag":"\"v2\"","properties":{
		"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"https://x"}},"provisioningState":"Succeeded"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Topic != "" || s.Version != "" || s.Properties.ProvisioningState != "" {
		t.Errorf("output-only fields kept: %+v", s)
	}
}

func TestDecodeValues(t *testing.T) {
	s := baseSubscription(t)
	// Numbers decode as float64; pairs as []any.
	afs := s.Properties.Filter.AdvancedFilters
	if v, ok := afs[0].Value.(float64); !ok || v != 100 {
		t.Errorf("value = %#v, want float64(100)", afs[0].Value)
	}
	if v, ok := afs[1].Value.(bool); !ok || !v {
		t.Errorf("value = %#v, want true", afs[1].Value)
	}
	if want := []any{[]any{0.0, 10.0}, []any{20.0, 20.0}}; !reflect.DeepEqual(afs[4].Values, want) {
		t.Errorf("values = %#v, want %#v", afs[4].Values, want)
	}
	if want := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC); !s.Properties.ExpirationTimeUTC.Equal(want) {
		t.Errorf("expiration = %v", s.Properties.ExpirationTimeUTC)
	}
	// Times are in UTC.
	s, err := DecodeSubscription([]byte(`{"properties":{"expirationTimeUtc":"2031-01-01T01:00:00.5+01:00"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Properties.ExpirationTimeUTC; e.Location() != time.UTC || !e.Equal(time.Date(2031, 1, 1, 0, 0, 0, 5e8, time.UTC)) {
		t.Errorf("expiration = %v", e)
	}
	// Empty arrays are nil, as when absent.
	s, err = DecodeSubscription([]byte(subFilter(`{"includedEventTypes":[],"advancedFilters":[{"operatorType":"IsNotNull","key":"k","values":[]}]}`)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Properties.Filter.IncludedEventTypes != nil || s.Properties.Filter.AdvancedFilters[0].Values != nil {
		t.Errorf("empty arrays not nil: %+v", s.Properties.Filter)
	}
}

func TestRoundTrip(t *testing.T) {
	topic := baseTopic(t)
	checkTopicRoundTrip(t, topic)
	s := baseSubscription(t)
	checkSubscriptionRoundTrip(t, s)
	// The decoded base is what the document says.
	if len(s.Properties.Filter.AdvancedFilters) != 6 || s.Properties.Destination.Properties.MaxEventsPerBatch != 10 ||
		s.Properties.DeadLetterDestination.Properties.URL != "s3://dead-letters?region=us-east-1" || len(s.Properties.Labels) != 2 {
		t.Errorf("base subscription decoded as %+v", s)
	}
}

func checkTopicRoundTrip(t testing.TB, topic Topic) {
	t.Helper()
	b1, err := json.Marshal(topic)
	if err != nil {
		t.Fatalf("encode %+v: %v", topic, err)
	}
	again, err := DecodeTopic(b1)
	if err != nil {
		t.Fatalf("decode own encoding %s: %v", b1, err)
	}
	if !reflect.DeepEqual(topic, again) {
		t.Fatalf("round trip changed the topic:\n%+v\n%+v\nvia %s", topic, again, b1)
	}
}

func checkSubscriptionRoundTrip(t testing.TB, s Subscription) {
	t.Helper()
	b1, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encode %+v: %v", s, err)
	}
	again, err := DecodeSubscription(b1)
	if err != nil {
		t.Fatalf("decode own encoding %s: %v", b1, err)
	}
	if !reflect.DeepEqual(s, again) {
		t.Fatalf("round trip changed the subscription:\n%+v\n%+v\nvia %s", s, again, b1)
	}
	b2, err := json.Marshal(again)
	if err != nil || string(b1) != string(b2) {
		t.Fatalf("encodings differ (%v):\n%s\n%s", err, b1, b2)
	}
}

func FuzzDecodeTopic(f *testing.F) {
	for _, seed := range []string{
		baseTopicJSON,
		`{}`,
		`{"name":"t","properties":{"partitions":64,"retentionInDays":3650,"createdAt":"2020-01-01T00:00:00+01:00"}}`,
		`{"name":"a","name":"b"}`,
		`{"Name":"x"}`,
		`{"properties":{"partitions":1e2}}`,
		`{"name":"\ud83d\ude00"} `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topic, err := DecodeTopic(data)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Errors) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		checkTopicRoundTrip(t, topic)
		_ = topic.Validate()
		topic.ApplyDefaults()
		_ = topic.Validate()
	})
}

func FuzzDecodeSubscription(f *testing.F) {
	for _, seed := range []string{
		baseSubscriptionJSON,
		`{}`,
		sub(`{"endpointUrl":"https://user:pw@x","deliveryAttributeMappings":[{"name":"aeg-x","type":"Static","properties":{}}]}`),
		subFilter(`{"advancedFilters":[{"operatorType":"NumberInRange","key":"k","values":[[2,1],[1],"x",[1,{"a":[]}]]}]}`),
		subFilter(`{"advancedFilters":[{"operatorType":"BoolEquals","key":"k","value":-0},{"value":1e308,"values":[]}]}`),
		subFilter(`{"includedEventTypes":[],"advancedFilters":[]}`),
		`{"properties":{"expirationTimeUtc":"9999-12-31T23:59:59.999999999-23:59","signingSecret":"whsec_AAAA"}}`,
		`{"properties":{"labels":["\u2028<>&"],"retryPolicy":{"maxDeliveryAttempts":0}}}`,
		`{"properties":{"deadLetterDestination":{"endpointType":"None","properties":{}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSubscription(data)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Errors) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		checkSubscriptionRoundTrip(t, s)
		_ = s.Validate(now)
		s.ApplyDefaults()
		_ = s.Validate(now)
	})
}
