package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func parseSchema(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var s map[string]any
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", s["$schema"])
	}
	return s
}

// pointer resolves a JSON Pointer (RFC 6901) in doc.
func pointer(t *testing.T, doc any, ptr string) any {
	t.Helper()
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				t.Fatalf("%s: no member %q", ptr, tok)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(c) {
				t.Fatalf("%s: bad index %q", ptr, tok)
			}
			cur = c[i]
		default:
			t.Fatalf("%s: cannot index %T", ptr, cur)
		}
	}
	return cur
}

// TestJSONSchemaLimits checks every number and enumeration in the schemas
// against the Go constants Validate uses.
func TestJSONSchemaLimits(t *testing.T) {
	topic := parseSchema(t, TopicJSONSchema)
	sub := parseSchema(t, SubscriptionJSONSchema)
	const (
		tp   = "/$defs/topicProperties/properties"
		sp   = "/$defs/subscriptionProperties/properties"
		wh   = "/$defs/webHookProperties/properties"
		dam  = "/$defs/deliveryAttributeMapping"
		flt  = "/$defs/filter/properties"
		adv  = "/$defs/advancedFilter"
		rp   = "/$defs/retryPolicy/properties"
		dead = "/$defs/deadLetterDestination"
	)
	for _, tc := range []struct {
		schema map[string]any
		ptr    string
		want   any
	}{
		{topic, "/properties/name/minLength", MinTopicNameLength},
		{topic, "/properties/name/maxLength", MaxTopicNameLength},
		{topic, "/properties/name/pattern", "^[A-Za-z0-9-]+$"},
		{topic, tp + "/inputSchema/enum", inputSchemas},
		{topic, tp + "/inputSchema/default", CloudEventSchemaV1_0},
		{topic, tp + "/partitions/minimum", 1},
		{topic, tp + "/partitions/maximum", MaxPartitions},
		{topic, tp + "/partitions/default", DefaultPartitions},
		{topic, tp + "/retentionInDays/minimum", 1},
		{topic, tp + "/retentionInDays/maximum", MaxRetentionInDays},
		{topic, tp + "/retentionInDays/default", DefaultRetentionInDays},

		{sub, "/properties/name/minLength", MinSubscriptionNameLength},
		{sub, "/properties/name/maxLength", MaxSubscriptionNameLength},
		{sub, "/properties/name/pattern", "^[A-Za-z0-9-]+$"},
		{sub, "/$defs/destination/properties/endpointType/const", EndpointTypeWebHook},
		{sub, wh + "/endpointUrl/maxLength", MaxEndpointURLLength},
		{sub, wh + "/maxEventsPerBatch/minimum", 1},
		{sub, wh + "/maxEventsPerBatch/maximum", MaxMaxEventsPerBatch},
		{sub, wh + "/maxEventsPerBatch/default", DefaultMaxEventsPerBatch},
		{sub, wh + "/preferredBatchSizeInKilobytes/minimum", 1},
		{sub, wh + "/preferredBatchSizeInKilobytes/maximum", MaxPreferredBatchSizeInKilobytes},
		{sub, wh + "/preferredBatchSizeInKilobytes/default", DefaultPreferredBatchSizeInKilobytes},
		{sub, wh + "/deliveryTimeoutInSeconds/minimum", 1},
		{sub, wh + "/deliveryTimeoutInSeconds/maximum", MaxDeliveryTimeoutInSeconds},
		{sub, wh + "/deliveryTimeoutInSeconds/default", DefaultDeliveryTimeoutInSeconds},
		{sub, wh + "/deliveryAttributeMappings/maxItems", MaxDeliveryAttributeMappings},
		{sub, dam + "/properties/type/enum", deliveryAttributeTypes},
		{sub, dam + "/properties/properties/properties/value/maxLength", MaxDeliveryAttributeValueLength},
		{sub, dam + "/allOf/0/if/properties/type/const", DeliveryAttributeStatic},
		{sub, dam + "/allOf/1/if/properties/type/const", DeliveryAttributeDynamic},
		{sub, flt + "/includedEventTypes/maxItems", MaxIncludedEventTypes},
		{sub, flt + "/subjectBeginsWith/maxLength", MaxSubjectFilterLength},
		{sub, flt + "/subjectEndsWith/maxLength", MaxSubjectFilterLength},
		{sub, flt + "/advancedFilters/maxItems", MaxAdvancedFilters},
		{sub, adv + "/properties/operatorType/enum", Operators()},
		{sub, adv + "/allOf/3/then/properties/values/items/maxLength", MaxAdvancedFilterStrings},
		{sub, sp + "/eventDeliverySchema/enum", append([]string{""}, inputSchemas...)},
		{sub, sp + "/labels/maxItems", MaxLabels},
		{sub, sp + "/labels/items/maxLength", MaxLabelLength},
		{sub, rp + "/maxDeliveryAttempts/minimum", 1},
		{sub, rp + "/maxDeliveryAttempts/maximum", MaxMaxDeliveryAttempts},
		{sub, rp + "/maxDeliveryAttempts/default", DefaultMaxDeliveryAttempts},
		{sub, rp + "/eventTimeToLiveInMinutes/minimum", 1},
		{sub, rp + "/eventTimeToLiveInMinutes/maximum", MaxEventTimeToLiveInMinutes},
		{sub, rp + "/eventTimeToLiveInMinutes/default", DefaultEventTimeToLiveInMinutes},
		{sub, dead + "/properties/endpointType/enum", deadLetterTypes},
		{sub, dead + "/allOf/0/if/properties/endpointType/const", DeadLetterStorageBucket},
		{sub, dead + "/allOf/1/if/properties/endpointType/const", DeadLetterNone},
	} {
		got := pointer(t, tc.schema, tc.ptr)
		if !sameJSON(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.ptr, got, tc.want)
		}
	}

	// Each operator group of the advanced filter's allOf matches the
	// operand shapes Validate uses.
	groups := map[operandKind]int{operandNumber: 0, operandBool: 1, operandNumbers: 2, operandStrings: 3, operandNumberRanges: 4, operandNone: 5}
	covered := 0
	for kind, i := range groups {
		var want []string
		for _, op := range Operators() {
			if operators[op] == kind {
				want = append(want, op)
			}
		}
		covered += len(want)
		ptr := fmt.Sprintf("%s/allOf/%d/if/properties/operatorType/enum", adv, i)
		if got := pointer(t, sub, ptr); !sameJSON(got, want) {
			t.Errorf("%s = %v, want %v", ptr, got, want)
		}
	}
	if covered != len(operators) || len(operators) != 19 {
		t.Errorf("%d operators in groups, %d known; want 19", covered, len(operators))
	}

	// The store URL schemes.
	pattern := pointer(t, sub, dead+"/allOf/0/then/properties/properties/properties/url/pattern").(string)
	re := regexp.MustCompile(pattern)
	for _, scheme := range deadLetterSchemes {
		if !re.MatchString(scheme+"://x") || !re.MatchString(strings.ToUpper(scheme)+":x") {
			t.Errorf("store URL pattern %s rejects scheme %s", pattern, scheme)
		}
	}
	if re.MatchString("https://x") || re.MatchString("files://x") {
		t.Errorf("store URL pattern %s accepts other schemes", pattern)
	}
}

// sameJSON compares a value from a parsed schema with a Go value.
func sameJSON(schemaValue, goValue any) bool {
	b, err := json.Marshal(goValue)
	if err != nil {
		return false
	}
	var want any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&want) != nil {
		return false
	}
	return reflect.DeepEqual(schemaValue, want)
}

// TestJSONSchemaMatchesStructs walks the schemas along the Go types: every
// object schema closes additionalProperties and lists exactly the struct's
// JSON fields, with a JSON type that fits the Go kind.
func TestJSONSchemaMatchesStructs(t *testing.T) {
	topic := parseSchema(t, TopicJSONSchema)
	sub := parseSchema(t, SubscriptionJSONSchema)
	matchStruct(t, topic, topic, reflect.TypeFor[Topic](), "topic")
	matchStruct(t, sub, sub, reflect.TypeFor[Subscription](), "subscription")
}

// deref follows $ref and the {"oneOf":[{"type":"null"}, X]} of optional
// objects, and says whether null was allowed.
func deref(t *testing.T, root, s map[string]any) (map[string]any, bool) {
	t.Helper()
	nullable := false
	if alts, ok := s["oneOf"].([]any); ok && len(alts) == 2 && reflect.DeepEqual(alts[0], map[string]any{"type": "null"}) {
		s, nullable = alts[1].(map[string]any), true
	}
	if ref, ok := s["$ref"].(string); ok {
		s = pointer(t, root, strings.TrimPrefix(ref, "#")).(map[string]any)
	}
	return s, nullable
}

func schemaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func matchStruct(t *testing.T, root, s map[string]any, st reflect.Type, path string) {
	t.Helper()
	if s["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties is not false", path)
	}
	props, _ := s["properties"].(map[string]any)
	var schemaNames []string
	for name := range props {
		schemaNames = append(schemaNames, name)
	}
	fields := jsonFields(st)
	goNames := slices.Clone(fields.names)
	sort.Strings(schemaNames)
	sort.Strings(goNames)
	if !slices.Equal(schemaNames, goNames) {
		t.Errorf("%s: schema properties %v, Go fields %v", path, schemaNames, goNames)
		return
	}
	for _, name := range goNames {
		ft := fields.types[name]
		fs, nullable := deref(t, root, props[name].(map[string]any))
		fpath := path + "." + name
		types := schemaTypes(fs)
		if slices.Contains(types, "null") {
			nullable = true
		}
		if ft.Kind() == reflect.Interface {
			if len(fs) != 0 {
				t.Errorf("%s: schema %v, Go takes any JSON value", fpath, fs)
			}
			continue
		}
		canBeNull := ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice
		if nullable != canBeNull {
			t.Errorf("%s: schema allows null: %v; Go decodes null: %v", fpath, nullable, canBeNull)
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		var want string
		switch {
		case ft == timeType:
			want = "string"
			if fs["format"] != "date-time" {
				t.Errorf("%s: format is not date-time", fpath)
			}
		case ft.Kind() == reflect.Struct:
			want = "object"
			matchStruct(t, root, fs, ft, fpath)
		case ft.Kind() == reflect.Slice:
			want = "array"
			if items, ok := fs["items"].(map[string]any); ok && ft.Elem().Kind() == reflect.Struct {
				is, _ := deref(t, root, items)
				matchStruct(t, root, is, ft.Elem(), fpath+"[]")
			}
		case ft.Kind() == reflect.String:
			want = "string"
		case ft.Kind() == reflect.Int:
			want = "integer"
		case ft.Kind() == reflect.Bool:
			want = "boolean"
		default:
			t.Fatalf("%s: unexpected Go type %v", fpath, ft)
		}
		// enum and const imply strings here.
		if types == nil && (fs["enum"] != nil || fs["const"] != nil) && want == "string" {
			continue
		}
		if !slices.Contains(types, want) {
			t.Errorf("%s: schema type %v, Go wants %s", fpath, types, want)
		}
	}
}

// TestJSONSchemaAgreesWithValidate runs every validation case through the
// JSON Schema too: the schema must accept the valid baselines and reject
// every broken resource except those whose rule it cannot state.
func TestJSONSchemaAgreesWithValidate(t *testing.T) {
	topicSchema := newSchemaChecker(t, TopicJSONSchema)
	subSchema := newSchemaChecker(t, SubscriptionJSONSchema)
	if errs := topicSchema.check(t, baseTopic(t)); len(errs) > 0 {
		t.Errorf("schema rejects the base topic: %v", errs)
	}
	if errs := subSchema.check(t, baseSubscription(t)); len(errs) > 0 {
		t.Errorf("schema rejects the base subscription: %v", errs)
	}
	for _, tc := range acceptCases() {
		s := baseSubscription(t)
		tc.mutate(&s)
		if errs := subSchema.check(t, s); len(errs) > 0 {
			t.Errorf("subscription %s: valid, but the schema rejects it: %v", tc.name, errs)
		}
	}
	for _, tc := range topicCases() {
		topic := baseTopic(t)
		tc.mutate(&topic)
		if errs := topicSchema.check(t, topic); len(errs) == 0 {
			t.Errorf("topic %s: the schema accepts it (%s: %s)", tc.name, tc.field, tc.msg)
		}
	}
	for _, tc := range subscriptionCases() {
		s := baseSubscription(t)
		tc.mutate(&s)
		errs := subSchema.check(t, s)
		switch {
		case tc.schemaSilent && len(errs) > 0:
			t.Errorf("subscription %s: marked schemaSilent, but the schema rejects it: %v", tc.name, errs)
		case !tc.schemaSilent && len(errs) == 0:
			t.Errorf("subscription %s: the schema accepts it (%s: %s)", tc.name, tc.field, tc.msg)
		}
	}
	// And the documents strict decoding rejects for their shape.
	for _, doc := range []string{
		`{"Name":"abc"}`,
		`{"properties":{"partitions":"4"}}`,
		`{"properties":{"partitions":4.5}}`,
		`{"properties":{"extra":1}}`,
		`{"name":null}`,
	} {
		if errs := topicSchema.checkJSON(t, []byte(doc)); len(errs) == 0 {
			t.Errorf("topic schema accepts %s", doc)
		}
	}
}

func TestJSONSchemaSigningSecretPattern(t *testing.T) {
	sub := parseSchema(t, SubscriptionJSONSchema)
	re := regexp.MustCompile(pointer(t, sub, "/$defs/subscriptionProperties/properties/signingSecret/pattern").(string))
	try := func(secret string) {
		goOK := checkSigningSecret(secret) == nil
		if re.MatchString(secret) != goOK {
			t.Errorf("secret %q: pattern matches %v, Go accepts %v", secret, !goOK, goOK)
		}
	}
	for n := range 70 {
		key := bytes.Repeat([]byte{0xff}, n)
		b64 := base64.StdEncoding.EncodeToString(key)
		try("whsec_" + b64)
		try("whsec_" + strings.TrimRight(b64, "="))
		if strings.HasSuffix(b64, "=") {
			// Non-zero padding bits: not canonical base64.
			i := len(strings.TrimRight(b64, "=")) - 1
			for _, c := range "AB/+9Zz" {
				try("whsec_" + b64[:i] + string(c) + b64[i+1:])
			}
		}
	}
	try("whsec_")
	try("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	try("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
}

// schemaChecker is a JSON Schema (2020-12) validator for the keywords the
// sluice schemas use. It fails the test on any other keyword, so a schema
// cannot grow a rule these tests ignore.
type schemaChecker struct {
	root map[string]any
}

func newSchemaChecker(t *testing.T, data []byte) *schemaChecker {
	return &schemaChecker{root: parseSchema(t, data)}
}

func (c *schemaChecker) check(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return c.checkJSON(t, b)
}

func (c *schemaChecker) checkJSON(t *testing.T, doc []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var inst any
	if err := dec.Decode(&inst); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return c.validate(t, c.root, inst, "")
}

var annotations = map[string]bool{
	"$schema": true, "$defs": true, "title": true, "description": true,
	"default": true, "readOnly": true, "format": true,
}

func (c *schemaChecker) validate(t *testing.T, schema any, inst any, path string) []string {
	t.Helper()
	if b, ok := schema.(bool); ok {
		if !b {
			return []string{path + ": false schema"}
		}
		return nil
	}
	s := schema.(map[string]any)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	num := func(v any) (float64, bool) {
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	for kw, arg := range s {
		switch kw {
		case "$ref":
			ref := strings.TrimPrefix(arg.(string), "#")
			errs = append(errs, c.validate(t, pointer(t, c.root, ref), inst, path)...)
		case "type":
			types := schemaTypes(s)
			if !slices.ContainsFunc(types, func(ty string) bool { return hasType(inst, ty) }) {
				fail("type %v", types)
			}
		case "enum":
			if !slices.ContainsFunc(arg.([]any), func(e any) bool { return reflect.DeepEqual(e, inst) }) {
				fail("not in enum")
			}
		case "const":
			if !reflect.DeepEqual(arg, inst) {
				fail("not const %v", arg)
			}
		case "properties":
			if obj, ok := inst.(map[string]any); ok {
				for name, sub := range arg.(map[string]any) {
					if v, ok := obj[name]; ok {
						errs = append(errs, c.validate(t, sub, v, path+"."+name)...)
					}
				}
			}
		case "additionalProperties":
			obj, ok := inst.(map[string]any)
			if !ok {
				break
			}
			props, _ := s["properties"].(map[string]any)
			for name, v := range obj {
				if _, known := props[name]; !known {
					errs = append(errs, c.validate(t, arg, v, path+"."+name)...)
				}
			}
		case "required":
			if obj, ok := inst.(map[string]any); ok {
				for _, name := range arg.([]any) {
					if _, ok := obj[name.(string)]; !ok {
						fail("%s required", name)
					}
				}
			}
		case "items":
			if arr, ok := inst.([]any); ok {
				prefix := 0
				if p, ok := s["prefixItems"].([]any); ok {
					prefix = len(p)
				}
				for i := prefix; i < len(arr); i++ {
					errs = append(errs, c.validate(t, arg, arr[i], fmt.Sprintf("%s[%d]", path, i))...)
				}
			}
		case "prefixItems":
			if arr, ok := inst.([]any); ok {
				for i, sub := range arg.([]any) {
					if i < len(arr) {
						errs = append(errs, c.validate(t, sub, arr[i], fmt.Sprintf("%s[%d]", path, i))...)
					}
				}
			}
		case "minItems", "maxItems":
			if arr, ok := inst.([]any); ok {
				n, _ := num(arg)
				if kw == "minItems" && float64(len(arr)) < n || kw == "maxItems" && float64(len(arr)) > n {
					fail("%s %v", kw, n)
				}
			}
		case "minLength", "maxLength":
			if str, ok := inst.(string); ok {
				n, _ := num(arg)
				l := float64(utf8.RuneCountInString(str))
				if kw == "minLength" && l < n || kw == "maxLength" && l > n {
					fail("%s %v", kw, n)
				}
			}
		case "pattern":
			if str, ok := inst.(string); ok && !regexp.MustCompile(arg.(string)).MatchString(str) {
				fail("pattern %s", arg)
			}
		case "minimum", "maximum":
			if v, ok := num(inst); ok {
				n, _ := num(arg)
				if kw == "minimum" && v < n || kw == "maximum" && v > n {
					fail("%s %v", kw, n)
				}
			}
		case "allOf":
			for _, sub := range arg.([]any) {
				errs = append(errs, c.validate(t, sub, inst, path)...)
			}
		case "oneOf":
			matched := 0
			for _, sub := range arg.([]any) {
				if len(c.validate(t, sub, inst, path)) == 0 {
					matched++
				}
			}
			if matched != 1 {
				fail("matches %d of oneOf", matched)
			}
		case "if":
			if len(c.validate(t, arg, inst, path)) == 0 {
				if then, ok := s["then"]; ok {
					errs = append(errs, c.validate(t, then, inst, path)...)
				}
			} else if els, ok := s["else"]; ok {
				errs = append(errs, c.validate(t, els, inst, path)...)
			}
		case "then", "else":
			// With "if".
		default:
			if !annotations[kw] {
				t.Fatalf("schema keyword %q at %s is not supported by this checker", kw, path)
			}
		}
	}
	return errs
}

func hasType(inst any, ty string) bool {
	switch ty {
	case "null":
		return inst == nil
	case "boolean":
		_, ok := inst.(bool)
		return ok
	case "string":
		_, ok := inst.(string)
		return ok
	case "number":
		_, ok := inst.(json.Number)
		return ok
	case "integer":
		n, ok := inst.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "array":
		_, ok := inst.([]any)
		return ok
	case "object":
		_, ok := inst.(map[string]any)
		return ok
	}
	return false
}
