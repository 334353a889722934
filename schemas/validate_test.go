package schemas

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// now is the validation clock of these tests.
var now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// baseTopicJSON is a valid topic using every input field.
const baseTopicJSON = `{
  "name": "orders",
  "properties": {
    "inputSchema": "EventGridSchema",
    "partitions": 8,
    "retentionInDays": 30
  }
}`

// baseSubscriptionJSON is a valid subscription using every input field and
// every operand shape of advanced filters (7 values in all).
const baseSubscriptionJSON = `{
  "name": "orders-webhook",
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": "https://example.com/hooks/orders?code=abc",
        "maxEventsPerBatch": 10,
        "preferredBatchSizeInKilobytes": 128,
        "deliveryAttributeMappings": [
          {"name": "Authorization", "type": "Static", "properties": {"value": "Bearer abc", "isSecret": true}},
          {"name": "X-Channel", "type": "Dynamic", "properties": {"sourceField": "data.channel"}}
        ]
      }
    },
    "filter": {
      "includedEventTypes": ["Orders.Created", "Orders.Shipped"],
      "subjectBeginsWith": "/orders/",
      "subjectEndsWith": ".json",
      "isSubjectCaseSensitive": true,
      "enableAdvancedFilteringOnArrays": true,
      "advancedFilters": [
        {"operatorType": "NumberGreaterThan", "key": "data.total", "value": 100},
        {"operatorType": "BoolEquals", "key": "data.paid", "value": true},
        {"operatorType": "NumberIn", "key": "data.region", "values": [1, 2.5]},
        {"operatorType": "StringContains", "key": "subject", "values": ["eu"]},
        {"operatorType": "NumberInRange", "key": "data.weight", "values": [[0, 10], [20, 20]]},
        {"operatorType": "IsNotNull", "key": "data.customer"}
      ]
    },
    "eventDeliverySchema": "CloudEventSchemaV1_0",
    "retryPolicy": {"maxDeliveryAttempts": 10, "eventTimeToLiveInMinutes": 120},
    "deadLetterDestination": {"endpointType": "StorageBucket", "properties": {"url": "s3://dead-letters?region=us-east-1"}},
    "labels": ["team-orders", ""],
    "expirationTimeUtc": "2031-01-01T00:00:00Z",
    "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  }
}`

func baseTopic(t testing.TB) Topic {
	t.Helper()
	topic, err := DecodeTopic([]byte(baseTopicJSON))
	if err != nil {
		t.Fatalf("decode base topic: %v", err)
	}
	return topic
}

func baseSubscription(t testing.TB) Subscription {
	t.Helper()
	s, err := DecodeSubscription([]byte(baseSubscriptionJSON))
	if err != nil {
		t.Fatalf("decode base subscription: %v", err)
	}
	return s
}

// validationCase mutates a valid resource so that exactly one rule breaks.
type validationCase[R any] struct {
	name   string
	mutate func(*R)
	field  string // the one FieldError's path
	msg    string // a part of its message that states the rule
	// schemaSilent marks rules a JSON Schema cannot state; for the others,
	// the JSON Schema must reject the mutated resource too.
	schemaSilent bool
}

func topicCases() []validationCase[Topic] {
	return []validationCase[Topic]{
		{name: "name too short", mutate: func(t *Topic) { t.Name = "ab" }, field: "name", msg: "3 to 50 characters"},
		{name: "name too long", mutate: func(t *Topic) { t.Name = strings.Repeat("a", 51) }, field: "name", msg: "3 to 50 characters"},
		{name: "name empty", mutate: func(t *Topic) { t.Name = "" }, field: "name", msg: "3 to 50 characters"},
		{name: "name underscore", mutate: func(t *Topic) { t.Name = "my_topic" }, field: "name", msg: "letters, digits and '-'"},
		{name: "name non-ASCII letter", mutate: func(t *Topic) { t.Name = "tôpic" }, field: "name", msg: "letters, digits and '-'"},
		{name: "inputSchema unknown", mutate: func(t *Topic) { t.Properties.InputSchema = "CustomInputSchema" }, field: "properties.inputSchema", msg: `"CloudEventSchemaV1_0" or "EventGridSchema"`},
		{name: "inputSchema wrong case", mutate: func(t *Topic) { t.Properties.InputSchema = "eventgridschema" }, field: "properties.inputSchema", msg: `"CloudEventSchemaV1_0" or "EventGridSchema"`},
		{name: "partitions above 64", mutate: func(t *Topic) { t.Properties.Partitions = 65 }, field: "properties.partitions", msg: "between 1 and 64"},
		{name: "partitions negative", mutate: func(t *Topic) { t.Properties.Partitions = -1 }, field: "properties.partitions", msg: "between 1 and 64"},
		{name: "retention above 3650", mutate: func(t *Topic) { t.Properties.RetentionInDays = 3651 }, field: "properties.retentionInDays", msg: "between 1 and 3650"},
		{name: "retention negative", mutate: func(t *Topic) { t.Properties.RetentionInDays = -7 }, field: "properties.retentionInDays", msg: "between 1 and 3650"},
	}
}

// Shorthands for subscription mutations.
func dest(s *Subscription) *DestinationProperties { return &s.Properties.Destination.Properties }
func mapping(s *Subscription, i int) *DeliveryAttributeMapping {
	return &dest(s).DeliveryAttributeMappings[i]
}
func advanced(s *Subscription, i int) *AdvancedFilter { return &s.Properties.Filter.AdvancedFilters[i] }

const (
	destPath     = "properties.destination.properties"
	mappingsPath = destPath + ".deliveryAttributeMappings"
	filterPath   = "properties.filter"
	advPath      = filterPath + ".advancedFilters"
	deadPath     = "properties.deadLetterDestination"
)

func repeatAny(v any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func subscriptionCases() []validationCase[Subscription] {
	secret := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n)) }
	return []validationCase[Subscription]{
		// Names.
		{name: "name too short", mutate: func(s *Subscription) { s.Name = "ab" }, field: "name", msg: "3 to 64 characters"},
		{name: "name too long", mutate: func(s *Subscription) { s.Name = strings.Repeat("a", 65) }, field: "name", msg: "3 to 64 characters"},
		{name: "name with dot", mutate: func(s *Subscription) { s.Name = "orders.hook" }, field: "name", msg: "letters, digits and '-'"},

		// Destination.
		{name: "endpointType not WebHook", mutate: func(s *Subscription) { s.Properties.Destination.EndpointType = "EventHub" },
			field: "properties.destination.endpointType", msg: `must be "WebHook"`},
		{name: "endpointType wrong case", mutate: func(s *Subscription) { s.Properties.Destination.EndpointType = "webhook" },
			field: "properties.destination.endpointType", msg: `must be "WebHook"`},
		{name: "endpointUrl missing", mutate: func(s *Subscription) { dest(s).EndpointURL = "" },
			field: destPath + ".endpointUrl", msg: "required"},
		{name: "endpointUrl relative", mutate: func(s *Subscription) { dest(s).EndpointURL = "/hooks/orders" },
			field: destPath + ".endpointUrl", msg: "absolute http or https URL"},
		{name: "endpointUrl ftp", mutate: func(s *Subscription) { dest(s).EndpointURL = "ftp://example.com/x" },
			field: destPath + ".endpointUrl", msg: "absolute http or https URL"},
		{name: "endpointUrl unparsable", mutate: func(s *Subscription) { dest(s).EndpointURL = "https://exa mple.com/" },
			field: destPath + ".endpointUrl", msg: "absolute http or https URL", schemaSilent: true},
		{name: "endpointUrl without host", mutate: func(s *Subscription) { dest(s).EndpointURL = "https:///hooks" },
			field: destPath + ".endpointUrl", msg: "with a host", schemaSilent: true},
		{name: "endpointUrl with credentials", mutate: func(s *Subscription) { dest(s).EndpointURL = "https://user:pw@example.com/" },
			field: destPath + ".endpointUrl", msg: "must not contain a user name or password", schemaSilent: true},
		{name: "endpointUrl too long", mutate: func(s *Subscription) {
			dest(s).EndpointURL = "https://example.com/" + strings.Repeat("a", MaxEndpointURLLength-19)
		}, field: destPath + ".endpointUrl", msg: "at most 2048 characters"},
		{name: "maxEventsPerBatch above 5000", mutate: func(s *Subscription) { dest(s).MaxEventsPerBatch = 5001 },
			field: destPath + ".maxEventsPerBatch", msg: "between 1 and 5000"},
		{name: "maxEventsPerBatch negative", mutate: func(s *Subscription) { dest(s).MaxEventsPerBatch = -1 },
			field: destPath + ".maxEventsPerBatch", msg: "between 1 and 5000"},
		{name: "preferredBatchSize above 1024", mutate: func(s *Subscription) { dest(s).PreferredBatchSizeInKilobytes = 1025 },
			field: destPath + ".preferredBatchSizeInKilobytes", msg: "between 1 and 1024"},
		{name: "delivery timeout above 300 s", mutate: func(s *Subscription) { dest(s).DeliveryTimeoutInSeconds = 301 },
			field: destPath + ".deliveryTimeoutInSeconds", msg: "between 1 and 300"},

		// Delivery attribute mappings.
		{name: "11 mappings", mutate: func(s *Subscription) {
			for i := range 9 {
				dest(s).DeliveryAttributeMappings = append(dest(s).DeliveryAttributeMappings, DeliveryAttributeMapping{
					Name: fmt.Sprintf("X-Extra-%d", i), Type: "Static", Properties: DeliveryAttributeProperties{Value: "v"},
				})
			}
		}, field: mappingsPath, msg: "at most 10 delivery attribute mappings"},
		{name: "mapping name missing", mutate: func(s *Subscription) { mapping(s, 0).Name = "" },
			field: mappingsPath + "[0].name", msg: "required"},
		{name: "mapping name not a token", mutate: func(s *Subscription) { mapping(s, 0).Name = "X Channel" },
			field: mappingsPath + "[0].name", msg: "HTTP header name"},
		{name: "mapping name with colon", mutate: func(s *Subscription) { mapping(s, 0).Name = "X-A:b" },
			field: mappingsPath + "[0].name", msg: "HTTP header name"},
		{name: "mapping aeg header", mutate: func(s *Subscription) { mapping(s, 0).Name = "aeg-event-type" },
			field: mappingsPath + "[0].name", msg: "set by sluice", schemaSilent: true},
		{name: "mapping webhook header", mutate: func(s *Subscription) { mapping(s, 0).Name = "Webhook-Signature" },
			field: mappingsPath + "[0].name", msg: "set by sluice", schemaSilent: true},
		{name: "mapping content-type", mutate: func(s *Subscription) { mapping(s, 0).Name = "Content-Type" },
			field: mappingsPath + "[0].name", msg: "set by sluice", schemaSilent: true},
		{name: "mapping content-length", mutate: func(s *Subscription) { mapping(s, 0).Name = "content-length" },
			field: mappingsPath + "[0].name", msg: "set by sluice", schemaSilent: true},
		{name: "mapping host", mutate: func(s *Subscription) { mapping(s, 1).Name = "HOST" },
			field: mappingsPath + "[1].name", msg: "set by sluice", schemaSilent: true},
		{name: "mapping duplicate name", mutate: func(s *Subscription) { mapping(s, 1).Name = "authorization" },
			field: mappingsPath + "[1].name", msg: "duplicate header name", schemaSilent: true},
		{name: "mapping type unknown", mutate: func(s *Subscription) { mapping(s, 0).Type = "Header" },
			field: mappingsPath + "[0].type", msg: `"Static" or "Dynamic"`},
		{name: "static without value", mutate: func(s *Subscription) { mapping(s, 0).Properties.Value = "" },
			field: mappingsPath + "[0].properties.value", msg: "required for Static"},
		{name: "static value with newline", mutate: func(s *Subscription) { mapping(s, 0).Properties.Value = "a\r\nX-Injected: 1" },
			field: mappingsPath + "[0].properties.value", msg: "valid HTTP header value", schemaSilent: true},
		{name: "static value too long", mutate: func(s *Subscription) { mapping(s, 0).Properties.Value = strings.Repeat("v", 4097) },
			field: mappingsPath + "[0].properties.value", msg: "at most 4096 characters"},
		{name: "static with sourceField", mutate: func(s *Subscription) { mapping(s, 0).Properties.SourceField = "data.x" },
			field: mappingsPath + "[0].properties.sourceField", msg: "only for Dynamic"},
		{name: "dynamic without sourceField", mutate: func(s *Subscription) { mapping(s, 1).Properties.SourceField = "" },
			field: mappingsPath + "[1].properties.sourceField", msg: "required for Dynamic"},
		{name: "dynamic with value", mutate: func(s *Subscription) { mapping(s, 1).Properties.Value = "v" },
			field: mappingsPath + "[1].properties.value", msg: "only for Static"},
		{name: "dynamic secret", mutate: func(s *Subscription) { mapping(s, 1).Properties.IsSecret = true },
			field: mappingsPath + "[1].properties.isSecret", msg: "only for Static"},

		// Filter.
		{name: "26 event types", mutate: func(s *Subscription) {
			s.Properties.Filter.IncludedEventTypes = strings.Split(strings.Repeat("T,", 25)+"T", ",")
		}, field: filterPath + ".includedEventTypes", msg: "at most 25 event types"},
		{name: "empty event type", mutate: func(s *Subscription) { s.Properties.Filter.IncludedEventTypes[1] = "" },
			field: filterPath + ".includedEventTypes[1]", msg: "must not be empty"},
		{name: "subjectBeginsWith too long", mutate: func(s *Subscription) { s.Properties.Filter.SubjectBeginsWith = strings.Repeat("é", 513) },
			field: filterPath + ".subjectBeginsWith", msg: "at most 512 characters"},
		{name: "subjectEndsWith too long", mutate: func(s *Subscription) { s.Properties.Filter.SubjectEndsWith = strings.Repeat("x", 513) },
			field: filterPath + ".subjectEndsWith", msg: "at most 512 characters"},
		{name: "26 advanced filters", mutate: func(s *Subscription) {
			for range 20 {
				s.Properties.Filter.AdvancedFilters = append(s.Properties.Filter.AdvancedFilters, AdvancedFilter{OperatorType: "IsNullOrUndefined", Key: "k"})
			}
		}, field: advPath, msg: "at most 25 advanced filters"},
		{name: "26 values across filters", mutate: func(s *Subscription) {
			s.Properties.Filter.AdvancedFilters = append(s.Properties.Filter.AdvancedFilters,
				AdvancedFilter{OperatorType: "StringIn", Key: "a", Values: repeatAny("x", 18)},
				AdvancedFilter{OperatorType: "NumberLessThan", Key: "b", Value: 1.0})
		}, field: advPath + "[7].value", msg: "at most 25 values across all advanced filters", schemaSilent: true},
		{name: "26 values in one filter", mutate: func(s *Subscription) { advanced(s, 3).Values = repeatAny("x", 22) },
			field: advPath + "[3].values", msg: "at most 25 values across all advanced filters", schemaSilent: true},
		{name: "operatorType unknown", mutate: func(s *Subscription) { advanced(s, 0).OperatorType = "NumberEquals" },
			field: advPath + "[0].operatorType", msg: "must be one of NumberIn, NumberNotIn"},
		{name: "key missing", mutate: func(s *Subscription) { advanced(s, 0).Key = "" },
			field: advPath + "[0].key", msg: "required"},
		{name: "NumberGreaterThan string value", mutate: func(s *Subscription) { advanced(s, 0).Value = "100" },
			field: advPath + "[0].value", msg: "must be a number"},
		{name: "NumberGreaterThan without value", mutate: func(s *Subscription) { advanced(s, 0).Value = nil },
			field: advPath + "[0].value", msg: "required: NumberGreaterThan takes a number"},
		{name: "NumberLessThanOrEquals with values", mutate: func(s *Subscription) {
			advanced(s, 0).OperatorType = "NumberLessThanOrEquals"
			advanced(s, 0).Values = []any{1.0}
		}, field: advPath + "[0].values", msg: "not allowed with NumberLessThanOrEquals"},
		{name: "BoolEquals string value", mutate: func(s *Subscription) { advanced(s, 1).Value = "true" },
			field: advPath + "[1].value", msg: "must be a boolean"},
		{name: "BoolEquals without value", mutate: func(s *Subscription) { advanced(s, 1).Value = nil },
			field: advPath + "[1].value", msg: "required: BoolEquals takes a boolean"},
		{name: "NumberIn without values", mutate: func(s *Subscription) { advanced(s, 2).Values = nil },
			field: advPath + "[2].values", msg: "at least one value required for NumberIn"},
		{name: "NumberNotIn string value", mutate: func(s *Subscription) {
			advanced(s, 2).OperatorType = "NumberNotIn"
			advanced(s, 2).Values[1] = "2"
		}, field: advPath + "[2].values[1]", msg: "must be a number"},
		{name: "NumberIn with value", mutate: func(s *Subscription) { advanced(s, 2).Value = 1.0 },
			field: advPath + "[2].value", msg: "not allowed with NumberIn"},
		{name: "StringContains number value", mutate: func(s *Subscription) { advanced(s, 3).Values = []any{1.0} },
			field: advPath + "[3].values[0]", msg: "must be a string"},
		{name: "StringBeginsWith without values", mutate: func(s *Subscription) {
			advanced(s, 3).OperatorType = "StringBeginsWith"
			advanced(s, 3).Values = nil
		}, field: advPath + "[3].values", msg: "at least one value required for StringBeginsWith"},
		{name: "StringIn value too long", mutate: func(s *Subscription) {
			advanced(s, 3).OperatorType = "StringIn"
			advanced(s, 3).Values = []any{"ok", strings.Repeat("x", 513)}
		}, field: advPath + "[3].values[1]", msg: "at most 512 characters"},
		{name: "StringNotEndsWith with value", mutate: func(s *Subscription) {
			advanced(s, 3).OperatorType = "StringNotEndsWith"
			advanced(s, 3).Value = "x"
		}, field: advPath + "[3].value", msg: "not allowed with StringNotEndsWith"},
		{name: "NumberInRange low above high", mutate: func(s *Subscription) { advanced(s, 4).Values[1] = []any{30.0, 20.0} },
			field: advPath + "[4].values[1]", msg: "low must not be greater than high", schemaSilent: true},
		{name: "NumberNotInRange triple", mutate: func(s *Subscription) {
			advanced(s, 4).OperatorType = "NumberNotInRange"
			advanced(s, 4).Values[0] = []any{1.0, 2.0, 3.0}
		}, field: advPath + "[4].values[0]", msg: "[low, high] pair"},
		{name: "NumberInRange plain number", mutate: func(s *Subscription) { advanced(s, 4).Values[0] = 5.0 },
			field: advPath + "[4].values[0]", msg: "[low, high] pair"},
		{name: "NumberInRange string bound", mutate: func(s *Subscription) { advanced(s, 4).Values[0] = []any{1.0, "2"} },
			field: advPath + "[4].values[0][1]", msg: "must be a number"},
		{name: "NumberInRange without values", mutate: func(s *Subscription) { advanced(s, 4).Values = nil },
			field: advPath + "[4].values", msg: "at least one value required for NumberInRange"},
		{name: "IsNotNull with value", mutate: func(s *Subscription) { advanced(s, 5).Value = true },
			field: advPath + "[5].value", msg: "not allowed with IsNotNull"},
		{name: "IsNullOrUndefined with values", mutate: func(s *Subscription) {
			advanced(s, 5).OperatorType = "IsNullOrUndefined"
			advanced(s, 5).Values = []any{"x"}
		}, field: advPath + "[5].values", msg: "not allowed with IsNullOrUndefined"},

		// Delivery schema, retry, labels, expiration.
		{name: "eventDeliverySchema unknown", mutate: func(s *Subscription) { s.Properties.EventDeliverySchema = "CustomInputSchema" },
			field: "properties.eventDeliverySchema", msg: `"CloudEventSchemaV1_0" or "EventGridSchema"`},
		{name: "maxDeliveryAttempts above 30", mutate: func(s *Subscription) { s.Properties.RetryPolicy.MaxDeliveryAttempts = 31 },
			field: "properties.retryPolicy.maxDeliveryAttempts", msg: "between 1 and 30"},
		{name: "maxDeliveryAttempts negative", mutate: func(s *Subscription) { s.Properties.RetryPolicy.MaxDeliveryAttempts = -1 },
			field: "properties.retryPolicy.maxDeliveryAttempts", msg: "between 1 and 30"},
		{name: "eventTimeToLive above 1440", mutate: func(s *Subscription) { s.Properties.RetryPolicy.EventTimeToLiveInMinutes = 1441 },
			field: "properties.retryPolicy.eventTimeToLiveInMinutes", msg: "between 1 and 1440"},
		{name: "26 labels", mutate: func(s *Subscription) { s.Properties.Labels = make([]string, 26) },
			field: "properties.labels", msg: "at most 25 labels"},
		{name: "label too long", mutate: func(s *Subscription) { s.Properties.Labels[1] = strings.Repeat("l", 257) },
			field: "properties.labels[1]", msg: "at most 256 characters"},
		{name: "expiration in the past", mutate: func(s *Subscription) { e := now.Add(-time.Second); s.Properties.ExpirationTimeUTC = &e },
			field: "properties.expirationTimeUtc", msg: "must be in the future", schemaSilent: true},
		{name: "expiration now", mutate: func(s *Subscription) { e := now; s.Properties.ExpirationTimeUTC = &e },
			field: "properties.expirationTimeUtc", msg: "must be in the future", schemaSilent: true},

		// Dead-lettering.
		{name: "deadLetter endpointType unknown", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.EndpointType = "StorageBlob" },
			field: deadPath + ".endpointType", msg: `"StorageBucket" or "None"`},
		{name: "deadLetter StorageBucket without url", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "" },
			field: deadPath + ".properties.url", msg: "required for StorageBucket"},
		{name: "deadLetter http url", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "https://example.com/dead" },
			field: deadPath + ".properties.url", msg: "must be a store URL"},
		{name: "deadLetter plain path", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "/var/dead" },
			field: deadPath + ".properties.url", msg: "must be a store URL"},
		{name: "deadLetter s3 without bucket", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "s3://" },
			field: deadPath + ".properties.url", msg: "need a bucket name", schemaSilent: true},
		{name: "deadLetter relative file", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "file:dead" },
			field: deadPath + ".properties.url", msg: "absolute path", schemaSilent: true},
		{name: "deadLetter file with host", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "file://srv/dead" },
			field: deadPath + ".properties.url", msg: "absolute path", schemaSilent: true},
		{name: "deadLetter url with credentials", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "s3://key:secret@bucket" },
			field: deadPath + ".properties.url", msg: "must not contain a user name or password", schemaSilent: true},
		{name: "deadLetter None with url", mutate: func(s *Subscription) { s.Properties.DeadLetterDestination.EndpointType = "None" },
			field: deadPath + ".properties.url", msg: "not allowed when endpointType is None"},

		// Signing secret.
		{name: "secret without prefix", mutate: func(s *Subscription) { s.Properties.SigningSecret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" },
			field: "properties.signingSecret", msg: "whsec_ followed by the standard base64"},
		{name: "secret not base64", mutate: func(s *Subscription) { s.Properties.SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!" },
			field: "properties.signingSecret", msg: "whsec_ followed by the standard base64"},
		{name: "secret URL base64", mutate: func(s *Subscription) { s.Properties.SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS_" },
			field: "properties.signingSecret", msg: "whsec_ followed by the standard base64"},
		{name: "secret with newline", mutate: func(s *Subscription) { s.Properties.SigningSecret = "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw" },
			field: "properties.signingSecret", msg: "whsec_ followed by the standard base64"},
		{name: "secret of 23 bytes", mutate: func(s *Subscription) { s.Properties.SigningSecret = secret(23) },
			field: "properties.signingSecret", msg: "24 to 64 bytes"},
		{name: "secret of 65 bytes", mutate: func(s *Subscription) { s.Properties.SigningSecret = secret(65) },
			field: "properties.signingSecret", msg: "24 to 64 bytes"},
	}
}

func TestValidateBaselines(t *testing.T) {
	topic := baseTopic(t)
	if err := topic.Validate(); err != nil {
		t.Errorf("base topic: %v", err)
	}
	s := baseSubscription(t)
	if err := s.Validate(now); err != nil {
		t.Errorf("base subscription: %v", err)
	}
	// The smallest valid resources.
	for _, name := range []string{"abc", "A-1", strings.Repeat("z", 50)} {
		if err := (&Topic{Name: name}).Validate(); err != nil {
			t.Errorf("topic %q: %v", name, err)
		}
	}
	minimal := Subscription{Name: strings.Repeat("s", 64), Properties: SubscriptionProperties{
		Destination: Destination{EndpointType: "WebHook", Properties: DestinationProperties{EndpointURL: "http://127.0.0.1:8080"}},
	}}
	if err := minimal.Validate(now); err != nil {
		t.Errorf("minimal subscription: %v", err)
	}
}

// wantOneError checks that err is a *ValidationError with exactly one
// FieldError, at field, whose message contains msg.
func wantOneError(t *testing.T, err error, field, msg string) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	if len(verr.Errors) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(verr.Errors), err)
	}
	got := verr.Errors[0]
	if got.Field != field {
		t.Errorf("field = %q, want %q (message %q)", got.Field, field, got.Message)
	}
	if !strings.Contains(got.Message, msg) {
		t.Errorf("message = %q, want it to mention %q", got.Message, msg)
	}
	if want := field + ": " + got.Message; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestTopicValidateRules(t *testing.T) {
	for _, tc := range topicCases() {
		t.Run(tc.name, func(t *testing.T) {
			topic := baseTopic(t)
			tc.mutate(&topic)
			wantOneError(t, topic.Validate(), tc.field, tc.msg)
		})
	}
}

func TestSubscriptionValidateRules(t *testing.T) {
	for _, tc := range subscriptionCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSubscription(t)
			tc.mutate(&s)
			wantOneError(t, s.Validate(now), tc.field, tc.msg)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := baseSubscription(t)
	s.Name = "x"
	dest(&s).MaxEventsPerBatch = 0 // unset is fine
	dest(&s).PreferredBatchSizeInKilobytes = 2000
	advanced(&s, 2).Values[0] = "one"
	advanced(&s, 3).Values[0] = false
	s.Properties.RetryPolicy.MaxDeliveryAttempts = 50
	err := s.Validate(now)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	var fields []string
	for _, fe := range verr.Errors {
		fields = append(fields, fe.Field)
	}
	want := []string{
		"name",
		destPath + ".preferredBatchSizeInKilobytes",
		advPath + "[2].values[0]",
		advPath + "[3].values[0]",
		"properties.retryPolicy.maxDeliveryAttempts",
	}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("fields = %q, want %q", fields, want)
	}
	if got := err.Error(); !strings.HasPrefix(got, "name: must be 3 to 64 characters long (found 1); "+destPath) {
		t.Errorf("Error() = %q", got)
	}
}

func TestValidateAcceptsUnsetSettings(t *testing.T) {
	// Zero means "use the default", before ApplyDefaults as after it.
	topic := Topic{Name: "orders"}
	if err := topic.Validate(); err != nil {
		t.Errorf("topic: %v", err)
	}
	s := baseSubscription(t)
	*dest(&s) = DestinationProperties{EndpointURL: "https://example.com"}
	s.Properties.RetryPolicy = &RetryPolicy{}
	s.Properties.EventDeliverySchema = ""
	s.Properties.Filter = &Filter{}
	s.Properties.DeadLetterDestination = &DeadLetterDestination{EndpointType: "None"}
	s.Properties.SigningSecret = ""
	s.Properties.ExpirationTimeUTC = nil
	if err := s.Validate(now); err != nil {
		t.Errorf("subscription: %v", err)
	}
}

// acceptCase mutates a valid subscription into another valid one.
type acceptCase struct {
	name   string
	mutate func(*Subscription)
}

// acceptCases are edge values on the valid side of the rules.
func acceptCases() []acceptCase {
	return []acceptCase{
		{"25 values across filters", func(s *Subscription) { advanced(s, 3).Values = repeatAny("x", 19) }},
		{"limits at their maximum", func(s *Subscription) {
			*dest(s) = DestinationProperties{
				EndpointURL:                   "https://example.com/" + strings.Repeat("a", MaxEndpointURLLength-20),
				MaxEventsPerBatch:             5000,
				PreferredBatchSizeInKilobytes: 1024,
			}
			s.Properties.RetryPolicy = &RetryPolicy{MaxDeliveryAttempts: 30, EventTimeToLiveInMinutes: 1440}
			s.Properties.Labels = make([]string, 25)
			s.Properties.Labels[0] = strings.Repeat("é", 256)
			s.Properties.Filter.SubjectBeginsWith = strings.Repeat("é", 512)
			s.Properties.Filter.IncludedEventTypes = strings.Split(strings.Repeat("T,", 24)+"T", ",")
		}},
		{"limits at their minimum", func(s *Subscription) {
			*dest(s) = DestinationProperties{EndpointURL: "http://h", MaxEventsPerBatch: 1, PreferredBatchSizeInKilobytes: 1}
			s.Properties.RetryPolicy = &RetryPolicy{MaxDeliveryAttempts: 1, EventTimeToLiveInMinutes: 1}
		}},
		{"ten mappings", func(s *Subscription) {
			for i := range 8 {
				dest(s).DeliveryAttributeMappings = append(dest(s).DeliveryAttributeMappings, DeliveryAttributeMapping{
					Name: fmt.Sprintf("X-Extra-%d", i), Type: "Dynamic", Properties: DeliveryAttributeProperties{SourceField: "id"},
				})
			}
		}},
		{"header token punctuation", func(s *Subscription) { mapping(s, 0).Name = "X-a.b_c~d!#$%&'*+^`|" }},
		{"header value with tab and UTF-8", func(s *Subscription) { mapping(s, 0).Properties.Value = "a\tb é" }},
		{"negative and fractional numbers", func(s *Subscription) {
			advanced(s, 0).Value = -1.5
			advanced(s, 4).Values = []any{[]any{-10.0, -10.0}}
		}},
		{"every operator", func(s *Subscription) {
			var afs []AdvancedFilter
			for _, op := range Operators() {
				af := AdvancedFilter{OperatorType: op, Key: "data.k"}
				switch operators[op] {
				case operandNumber:
					af.Value = 1.0
				case operandBool:
					af.Value = false
				case operandNumbers:
					af.Values = []any{1.0}
				case operandStrings:
					af.Values = []any{""}
				case operandNumberRanges:
					af.Values = []any{[]any{1.0, 2.0}}
				}
				afs = append(afs, af)
			}
			s.Properties.Filter.AdvancedFilters = afs
		}},
		{"http endpoint with port and IPv6", func(s *Subscription) { dest(s).EndpointURL = "http://[::1]:8080/hook" }},
		{"uppercase scheme", func(s *Subscription) { dest(s).EndpointURL = "HTTPS://example.com" }},
		{"EventGridSchema delivery", func(s *Subscription) { s.Properties.EventDeliverySchema = "EventGridSchema" }},
		{"mem store", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "mem://" }},
		{"file store", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "file:///var/lib/dead" }},
		{"file store on localhost", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "file://localhost/x" }},
		{"gs store", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "gs://b" }},
		{"azblob store with prefix", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "azblob://c?prefix=d" }},
		{"uppercase store scheme", func(s *Subscription) { s.Properties.DeadLetterDestination.Properties.URL = "S3://bucket" }},
		{"dead-lettering off", func(s *Subscription) {
			s.Properties.DeadLetterDestination = &DeadLetterDestination{EndpointType: "None"}
		}},
		{"secret of 64 bytes", func(s *Subscription) {
			s.Properties.SigningSecret = "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64))
		}},
		{"generated secret", func(s *Subscription) { s.Properties.SigningSecret = NewSigningSecret() }},
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range acceptCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSubscription(t)
			tc.mutate(&s)
			if err := s.Validate(now); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateNonJSONNumbers(t *testing.T) {
	// Operands built in Go must be float64, as decoding makes them.
	s := baseSubscription(t)
	advanced(&s, 0).Value = 100 // an int
	wantOneError(t, s.Validate(now), advPath+"[0].value", "must be a number")
}

func TestValidateNames(t *testing.T) {
	for _, tc := range []struct {
		fn   func(string) error
		name string
		msg  string // "" for valid
	}{
		{ValidateTopicName, "abc", ""},
		{ValidateTopicName, strings.Repeat("a", 50), ""},
		{ValidateTopicName, "Orders-2024", ""},
		{ValidateTopicName, "ab", "3 to 50 characters"},
		{ValidateTopicName, strings.Repeat("a", 51), "3 to 50 characters"},
		{ValidateTopicName, "a/b/c", "letters, digits and '-'"},
		{ValidateTopicName, "a b", "letters, digits and '-'"},
		{ValidateSubscriptionName, "abc", ""},
		{ValidateSubscriptionName, strings.Repeat("a", 64), ""},
		{ValidateSubscriptionName, strings.Repeat("a", 65), "3 to 64 characters"},
		{ValidateSubscriptionName, "sub_1", "letters, digits and '-'"},
		{ValidateSubscriptionName, "..", "3 to 64"},
	} {
		err := tc.fn(tc.name)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.name, err)
			}
			continue
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Errors) == 0 || verr.Errors[0].Field != "name" ||
			!strings.Contains(verr.Errors[0].Message, tc.msg) {
			t.Errorf("%q: error = %v, want name: …%s…", tc.name, err, tc.msg)
		}
	}
	// Both problems are reported.
	err := ValidateSubscriptionName("_")
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != 2 {
		t.Errorf(`ValidateSubscriptionName("_") = %v, want two errors`, err)
	}
}

func TestApplyDefaults(t *testing.T) {
	var topic Topic
	topic.ApplyDefaults()
	want := TopicProperties{InputSchema: CloudEventSchemaV1_0, Partitions: 4, RetentionInDays: 7}
	if topic.Properties != want {
		t.Errorf("topic defaults = %+v, want %+v", topic.Properties, want)
	}
	set := TopicProperties{InputSchema: EventGridSchema, Partitions: 1, RetentionInDays: 1}
	topic.Properties = set
	topic.ApplyDefaults()
	if topic.Properties != set {
		t.Errorf("defaults overwrote settings: %+v", topic.Properties)
	}

	var s Subscription
	s.ApplyDefaults()
	if d := s.Properties.Destination.Properties; d.MaxEventsPerBatch != 1 || d.PreferredBatchSizeInKilobytes != 64 {
		t.Errorf("destination defaults = %+v", d)
	}
	if rp := s.Properties.RetryPolicy; rp == nil || *rp != (RetryPolicy{MaxDeliveryAttempts: 30, EventTimeToLiveInMinutes: 1440}) {
		t.Errorf("retry policy defaults = %+v", rp)
	}
	if s.Properties.EventDeliverySchema != "" || s.Properties.SigningSecret != "" || s.Properties.Filter != nil ||
		s.Properties.DeadLetterDestination != nil {
		t.Errorf("ApplyDefaults set more than it should: %+v", s.Properties)
	}
	// A partial retry policy keeps what is set.
	s.Properties.RetryPolicy = &RetryPolicy{MaxDeliveryAttempts: 3}
	s.ApplyDefaults()
	if rp := *s.Properties.RetryPolicy; rp != (RetryPolicy{MaxDeliveryAttempts: 3, EventTimeToLiveInMinutes: 1440}) {
		t.Errorf("partial retry policy = %+v", rp)
	}
	// Defaults are valid.
	s.Name = "sub"
	s.Properties.Destination = Destination{EndpointType: "WebHook", Properties: DestinationProperties{EndpointURL: "https://x"}}
	s.ApplyDefaults()
	if err := s.Validate(now); err != nil {
		t.Errorf("defaulted subscription: %v", err)
	}
	topic = Topic{Name: "abc"}
	topic.ApplyDefaults()
	if err := topic.Validate(); err != nil {
		t.Errorf("defaulted topic: %v", err)
	}
}

func TestResolveDeliverySchema(t *testing.T) {
	for _, tc := range []struct{ set, topic, want string }{
		{"", EventGridSchema, EventGridSchema},
		{"", CloudEventSchemaV1_0, CloudEventSchemaV1_0},
		{"", "", CloudEventSchemaV1_0},
		{CloudEventSchemaV1_0, EventGridSchema, CloudEventSchemaV1_0},
		{EventGridSchema, "", EventGridSchema},
	} {
		var s Subscription
		s.Properties.EventDeliverySchema = tc.set
		s.ResolveDeliverySchema(tc.topic)
		if got := s.Properties.EventDeliverySchema; got != tc.want {
			t.Errorf("ResolveDeliverySchema(%q) with %q = %q, want %q", tc.topic, tc.set, got, tc.want)
		}
	}
}

func TestNewKeys(t *testing.T) {
	k1, k2 := NewTopicKey(), NewTopicKey()
	if len(k1) != 44 || k1 == k2 {
		t.Errorf("NewTopicKey() = %q, %q: want two different 44-character keys", k1, k2)
	}
	if b, err := base64.StdEncoding.DecodeString(k1); err != nil || len(b) != 32 {
		t.Errorf("NewTopicKey() = %q: not base64 of 32 bytes (%v)", k1, err)
	}
	s1, s2 := NewSigningSecret(), NewSigningSecret()
	if s1 == s2 || !strings.HasPrefix(s1, "whsec_") {
		t.Errorf("NewSigningSecret() = %q, %q", s1, s2)
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, "whsec_")); err != nil || len(b) != 32 {
		t.Errorf("NewSigningSecret() = %q: not whsec_ and base64 of 32 bytes (%v)", s1, err)
	}
	if err := checkSigningSecret(s1); err != nil {
		t.Errorf("generated secret rejected: %v", err)
	}
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	s := baseSubscription(t)
	s.Properties.SigningSecret = "whsec_c2VjcmV0LXNlY3JldA=="       // 13 bytes
	dest(&s).EndpointURL = "https://user:hunter2@exa mple.com/?x=1" // unparsable
	mapping(&s, 0).Properties.Value = "Bearer hunter2\n"
	err := s.Validate(now)
	if err == nil {
		t.Fatal("no error")
	}
	for _, secret := range []string{"c2VjcmV0", "hunter2"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}
}
