package dispatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schemas"
)

// ceEvent parses a stored CloudEvent with the usual attributes and the
// given extra members (each starting with a comma).
func ceEvent(t testing.TB, members string) *Event {
	t.Helper()
	js := `{"specversion":"1.0","id":"e1","source":"/orders","type":"Order.Created","subject":"/orders/1","time":"2026-01-02T15:04:05Z"` + members + `}`
	e, err := ParseEvent([]byte(js))
	if err != nil {
		t.Fatalf("ParseEvent(%s): %v", js, err)
	}
	return &e
}

// advCase is an event's data member (JSON; "" for none) and whether one
// advanced filter matches it, with enableAdvancedFilteringOnArrays off and
// on. Most values decide the same either way.
type advCase struct {
	name    string
	data    string
	want    bool
	arrayOn *bool // the outcome with arrays on, if it differs
}

func onArrays(b bool) *bool { return &b }

func checkAdvanced(t *testing.T, af schemas.AdvancedFilter, cases []advCase) {
	t.Helper()
	for _, arrays := range []bool{false, true} {
		f := NewFilter(&schemas.Filter{EnableAdvancedFilteringOnArrays: arrays, AdvancedFilters: []schemas.AdvancedFilter{af}}, schemas.CloudEventSchemaV1_0)
		if r := f.Unsupported(); r != "" {
			t.Fatalf("Unsupported() = %q", r)
		}
		for _, tc := range cases {
			want := tc.want
			if arrays && tc.arrayOn != nil {
				want = *tc.arrayOn
			}
			members := ""
			if tc.data != "" {
				members = `,"data":` + tc.data
			}
			if got := f.Match(ceEvent(t, members)); got != want {
				t.Errorf("%s %s %v (arrays %v) on data %s (%s): got %v, want %v",
					af.Key, af.OperatorType, operands(af), arrays, tc.data, tc.name, got, want)
			}
		}
	}
}

func operands(af schemas.AdvancedFilter) any {
	if af.Values != nil {
		return af.Values
	}
	return af.Value
}

func afValues(vs ...any) []any { return vs }

// commonMissing are the cases where data.n has no value: for every
// operator but IsNullOrUndefined, NumberNotIn and StringNotIn they do not
// match.
func commonMissing(want bool) []advCase {
	return []advCase{
		{name: "no data", data: "", want: want},
		{name: "missing key", data: `{"m":1}`, want: want},
		{name: "null", data: `{"n":null}`, want: want},
		{name: "path through a string", data: `"text"`, want: want},
		{name: "data null", data: `null`, want: want},
		{name: "key differs", data: `{"nn":5,"n2":5}`, want: want},
	}
}

// unsupportedValues are values no value operator matches, Not operators
// included.
var unsupportedValues = []advCase{
	{name: "object", data: `{"n":{"n":5}}`},
	{name: "array of objects", data: `{"n":[{"a":1}]}`},
	{name: "array with an object", data: `{"n":[5,"x",true,{"a":1}]}`},
	{name: "array of arrays", data: `{"n":[[5]]}`},
}

func TestAdvancedNumberIn(t *testing.T) {
	af := schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "data.n", Values: afValues(5.0, 1.5)}
	cases := []advCase{
		{name: "first value", data: `{"n":5}`, want: true},
		{name: "second value", data: `{"n":1.5}`, want: true},
		{name: "other", data: `{"n":2}`, want: false},
		{name: "same number written otherwise", data: `{"n":5.0}`, want: true},
		{name: "exponent", data: `{"n":0.5e1}`, want: true},
		{name: "negative", data: `{"n":-5}`, want: false},
		{name: "number as string", data: `{"n":"5"}`, want: false},
		{name: "boolean", data: `{"n":true}`, want: false},
		{name: "array hit", data: `{"n":[2,5]}`, want: false, arrayOn: onArrays(true)},
		{name: "array miss", data: `{"n":[2,3]}`, want: false},
		{name: "empty array", data: `{"n":[]}`, want: false},
		{name: "array: strings skipped", data: `{"n":["5",1.5]}`, want: false, arrayOn: onArrays(true)},
		{name: "array of strings only", data: `{"n":["5"]}`, want: false},
		{name: "array: null skipped", data: `{"n":[null,5]}`, want: false, arrayOn: onArrays(true)},
	}
	cases = append(cases, commonMissing(false)...)
	cases = append(cases, unsupportedValues...)
	checkAdvanced(t, af, cases)
}

func TestAdvancedNumberNotIn(t *testing.T) {
	af := schemas.AdvancedFilter{OperatorType: schemas.OpNumberNotIn, Key: "data.n", Values: afValues(5.0, 1.5)}
	cases := []advCase{
		{name: "first value", data: `{"n":5}`, want: false},
		{name: "second value", data: `{"n":1.5}`, want: false},
		{name: "other", data: `{"n":2}`, want: true},
		{name: "number as string is skipped", data: `{"n":"5"}`, want: true},
		{name: "boolean is skipped", data: `{"n":false}`, want: true},
		{name: "array with a hit", data: `{"n":[2,5]}`, want: false},
		{name: "array without a hit", data: `{"n":[2,3]}`, want: false, arrayOn: onArrays(true)},
		{name: "empty array", data: `{"n":[]}`, want: false, arrayOn: onArrays(true)},
		{name: "array: strings skipped", data: `{"n":["5",2]}`, want: false, arrayOn: onArrays(true)},
	}
	// A missing key matches NumberNotIn (the filtering page's note).
	cases = append(cases, commonMissing(true)...)
	cases = append(cases, unsupportedValues...)
	checkAdvanced(t, af, cases)
}

func TestAdvancedNumberComparisons(t *testing.T) {
	for _, tc := range []struct {
		op                       string
		below, equal, above, big bool
	}{
		{schemas.OpNumberLessThan, true, false, false, false},
		{schemas.OpNumberLessThanOrEquals, true, true, false, false},
		{schemas.OpNumberGreaterThan, false, false, true, true},
		{schemas.OpNumberGreaterThanOrEquals, false, true, true, true},
	} {
		t.Run(tc.op, func(t *testing.T) {
			af := schemas.AdvancedFilter{OperatorType: tc.op, Key: "data.n", Value: 10.0}
			cases := []advCase{
				{name: "below", data: `{"n":9.999}`, want: tc.below},
				{name: "equal", data: `{"n":10}`, want: tc.equal},
				{name: "equal, written otherwise", data: `{"n":1e1}`, want: tc.equal},
				{name: "above", data: `{"n":10.001}`, want: tc.above},
				{name: "beyond float64", data: `{"n":1e400}`, want: tc.big},
				{name: "very negative", data: `{"n":-1e400}`, want: tc.below},
				{name: "number as string", data: `{"n":"5"}`, want: false},
				{name: "number as string above", data: `{"n":"50"}`, want: false},
				{name: "boolean", data: `{"n":true}`, want: false},
				{name: "array below", data: `{"n":[9]}`, want: false, arrayOn: onArrays(tc.below)},
				{name: "array above", data: `{"n":[11]}`, want: false, arrayOn: onArrays(tc.above)},
				{name: "array either", data: `{"n":[9,11]}`, want: false, arrayOn: onArrays(true)},
				{name: "empty array", data: `{"n":[]}`, want: false},
			}
			cases = append(cases, commonMissing(false)...)
			cases = append(cases, unsupportedValues...)
			checkAdvanced(t, af, cases)
		})
	}
}

func TestAdvancedNumberInRange(t *testing.T) {
	af := schemas.AdvancedFilter{OperatorType: schemas.OpNumberInRange, Key: "data.n", Values: afValues(afValues(0.0, 10.0), afValues(20.0, 20.0))}
	cases := []advCase{
		{name: "low bound inclusive", data: `{"n":0}`, want: true},
		{name: "high bound inclusive", data: `{"n":10}`, want: true},
		{name: "inside", data: `{"n":5.5}`, want: true},
		{name: "below", data: `{"n":-0.001}`, want: false},
		{name: "between ranges", data: `{"n":15}`, want: false},
		{name: "one-point range", data: `{"n":20}`, want: true},
		{name: "above", data: `{"n":20.5}`, want: false},
		{name: "number as string", data: `{"n":"5"}`, want: false},
		{name: "array with one inside", data: `{"n":[30,20]}`, want: false, arrayOn: onArrays(true)},
		{name: "array all outside", data: `{"n":[30,40]}`, want: false},
	}
	cases = append(cases, commonMissing(false)...)
	cases = append(cases, unsupportedValues...)
	checkAdvanced(t, af, cases)
}

func TestAdvancedNumberNotInRange(t *testing.T) {
	af := schemas.AdvancedFilter{OperatorType: schemas.OpNumberNotInRange, Key: "data.n", Values: afValues(afValues(0.0, 10.0), afValues(20.0, 20.0))}
	cases := []advCase{
		{name: "low bound inclusive", data: `{"n":0}`, want: false},
		{name: "high bound inclusive", data: `{"n":10}`, want: false},
		{name: "inside second", data: `{"n":20}`, want: false},
		{name: "between ranges", data: `{"n":15}`, want: true},
		{name: "below", data: `{"n":-1}`, want: true},
		{name: "number as string is skipped", data: `{"n":"5"}`, want: true},
		{name: "array with one inside", data: `{"n":[15,5]}`, want: false},
		{name: "array all outside", data: `{"n":[15,30]}`, want: false, arrayOn: onArrays(true)},
		{name: "empty array", data: `{"n":[]}`, want: false, arrayOn: onArrays(true)},
	}
	// Undocumented: sluice treats it like the Not operators that came with
	// it, which do not match a missing key.
	cases = append(cases, commonMissing(false)...)
	cases = append(cases, unsupportedValues...)
	checkAdvanced(t, af, cases)
}

func TestAdvancedBoolEquals(t *testing.T) {
	for _, v := range []bool{true, false} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			af := schemas.AdvancedFilter{OperatorType: schemas.OpBoolEquals, Key: "data.n", Value: v}
			cases := []advCase{
				{name: "true", data: `{"n":true}`, want: v},
				{name: "false", data: `{"n":false}`, want: !v},
				{name: "string", data: fmt.Sprintf(`{"n":"%v"}`, v), want: false},
				{name: "number", data: `{"n":1}`, want: false},
				{name: "zero", data: `{"n":0}`, want: false},
				{name: "array with both", data: `{"n":[false,true]}`, want: false, arrayOn: onArrays(true)},
				{name: "array with the value", data: fmt.Sprintf(`{"n":[%v]}`, v), want: false, arrayOn: onArrays(true)},
				{name: "array without it", data: fmt.Sprintf(`{"n":[%v]}`, !v), want: false},
				{name: "array of strings", data: fmt.Sprintf(`{"n":["%v"]}`, v), want: false},
			}
			cases = append(cases, commonMissing(false)...)
			cases = append(cases, unsupportedValues...)
			checkAdvanced(t, af, cases)
		})
	}
}

func TestAdvancedStringPositive(t *testing.T) {
	type c = advCase
	for _, tc := range []struct {
		op    string
		vals  []any
		cases []advCase
	}{
		{schemas.OpStringContains, afValues("azure", "micro"), []advCase{
			{name: "contains", data: `{"n":"the Azure data factory"}`, want: true},
			{name: "second value", data: `{"n":"MICROSOFT"}`, want: true},
			{name: "whole string", data: `{"n":"azure"}`, want: true},
			{name: "neither", data: `{"n":"aws"}`, want: false},
			{name: "empty", data: `{"n":""}`, want: false},
			{name: "escaped", data: `{"n":"\u0041zure"}`, want: true},
			{name: "across an escape", data: `{"n":"az\u0075re"}`, want: true},
		}},
		{schemas.OpStringBeginsWith, afValues("event", "message"), []advCase{
			{name: "begins", data: `{"n":"Event hubs"}`, want: true},
			{name: "second value", data: `{"n":"messages"}`, want: true},
			{name: "inside", data: `{"n":"hubs event"}`, want: false},
			{name: "shorter", data: `{"n":"even"}`, want: false},
		}},
		{schemas.OpStringEndsWith, afValues("jpg", ".png"), []advCase{
			{name: "ends", data: `{"n":"a.JPG"}`, want: true},
			{name: "second value", data: `{"n":"b.png"}`, want: true},
			{name: "no dot needed", data: `{"n":"ajpg"}`, want: true},
			{name: "other", data: `{"n":"a.jpeg"}`, want: false},
		}},
		{schemas.OpStringIn, afValues("contoso", "fabrikam"), []advCase{
			{name: "equal ignoring case", data: `{"n":"CONTOSO"}`, want: true},
			{name: "second value", data: `{"n":"Fabrikam"}`, want: true},
			{name: "trailing space", data: `{"n":"contoso "}`, want: false},
			{name: "prefix only", data: `{"n":"contos"}`, want: false},
		}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			af := schemas.AdvancedFilter{OperatorType: tc.op, Key: "data.n", Values: tc.vals}
			first := tc.vals[0].(string)
			cases := append(tc.cases,
				c{name: "number", data: `{"n":5}`, want: false},
				c{name: "array hit", data: fmt.Sprintf(`{"n":["x",%q]}`, first), want: false, arrayOn: onArrays(true)},
				c{name: "array miss", data: `{"n":["x","y"]}`, want: false},
				c{name: "array: numbers skipped", data: fmt.Sprintf(`{"n":[5,%q]}`, first), want: false, arrayOn: onArrays(true)},
				c{name: "empty array", data: `{"n":[]}`, want: false},
			)
			cases = append(cases, commonMissing(false)...)
			cases = append(cases, unsupportedValues...)
			checkAdvanced(t, af, cases)
		})
	}
}

func TestAdvancedStringNegative(t *testing.T) {
	type c = advCase
	for _, tc := range []struct {
		op    string
		vals  []any
		cases []advCase
		// missing is what a missing key gives: StringNotIn matches, the
		// other three do not (the filtering page's note).
		missing bool
	}{
		{schemas.OpStringNotContains, afValues("contoso", "fabrikam"), []advCase{
			{name: "contains", data: `{"n":"my Contoso app"}`, want: false},
			{name: "second value", data: `{"n":"FABRIKAM"}`, want: false},
			{name: "neither", data: `{"n":"other"}`, want: true},
			{name: "empty", data: `{"n":""}`, want: true},
		}, false},
		{schemas.OpStringNotBeginsWith, afValues("event", "message"), []advCase{
			{name: "begins", data: `{"n":"Event hubs"}`, want: false},
			{name: "inside", data: `{"n":"hubs event"}`, want: true},
		}, false},
		{schemas.OpStringNotEndsWith, afValues("jpg", "png"), []advCase{
			{name: "ends", data: `{"n":"a.PNG"}`, want: false},
			{name: "other", data: `{"n":"a.gif"}`, want: true},
		}, false},
		{schemas.OpStringNotIn, afValues("contoso", "fabrikam"), []advCase{
			{name: "equal ignoring case", data: `{"n":"Contoso"}`, want: false},
			{name: "other", data: `{"n":"contoso-2"}`, want: true},
		}, true},
	} {
		t.Run(tc.op, func(t *testing.T) {
			af := schemas.AdvancedFilter{OperatorType: tc.op, Key: "data.n", Values: tc.vals}
			first := tc.vals[0].(string)
			cases := append(tc.cases,
				c{name: "number is its text", data: `{"n":5}`, want: true},
				c{name: "array with a hit", data: fmt.Sprintf(`{"n":["x",%q]}`, first), want: false},
				c{name: "array without", data: `{"n":["x","y"]}`, want: false, arrayOn: onArrays(true)},
				c{name: "array of numbers skipped", data: `{"n":[1,2]}`, want: false, arrayOn: onArrays(true)},
				c{name: "empty array", data: `{"n":[]}`, want: false, arrayOn: onArrays(true)},
			)
			cases = append(cases, commonMissing(tc.missing)...)
			cases = append(cases, unsupportedValues...)
			checkAdvanced(t, af, cases)
		})
	}
}

func TestAdvancedStringCase(t *testing.T) {
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.n", Values: afValues("ÄNDERUNG")}, []advCase{
		{name: "non-ASCII fold", data: `{"n":"änderung"}`, want: true},
		{name: "escaped non-ASCII", data: `{"n":"\u00e4nderung"}`, want: true},
	})
	// U+212A KELVIN SIGN folds to k though it is 3 bytes long.
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringBeginsWith, Key: "data.n", Values: afValues("\u212Aey")}, []advCase{
		{name: "kelvin sign", data: `{"n":"key/1"}`, want: true},
		{name: "kelvin sign upper", data: `{"n":"KEY/1"}`, want: true},
	})
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringContains, Key: "data.n", Values: afValues("key")}, []advCase{
		{name: "kelvin sign in the event", data: `{"n":"a \u212AEY b"}`, want: true},
		{name: "long s", data: `{"n":"\u017F"}`, want: false},
	})
	// Simple folding, as strings.EqualFold: ß is not SS.
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.n", Values: afValues("STRASSE")}, []advCase{
		{name: "no full folding", data: `{"n":"straße"}`, want: false},
	})
}

// TestAdvancedScalarsAsStrings checks that a number or boolean that is the
// key's whole value is its JSON text to the String operators, as in the
// filtering page's CloudEvents example, but not inside arrays, where
// elements of another type are ignored.
func TestAdvancedScalarsAsStrings(t *testing.T) {
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringBeginsWith, Key: "data.n", Values: afValues("5", "1")}, []advCase{
		{name: "integer", data: `{"n":5}`, want: true},
		{name: "decimal", data: `{"n":55.5}`, want: true},
		{name: "as written", data: `{"n":1e3}`, want: true},
		{name: "other", data: `{"n":25}`, want: false},
		{name: "in an array", data: `{"n":[5]}`, want: false},
	})
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.n", Values: afValues("TRUE")}, []advCase{
		{name: "boolean", data: `{"n":true}`, want: true},
		{name: "other boolean", data: `{"n":false}`, want: false},
	})
}

func TestAdvancedIsNull(t *testing.T) {
	present := []advCase{
		{name: "empty string", data: `{"n":""}`},
		{name: "zero", data: `{"n":0}`},
		{name: "false", data: `{"n":false}`},
		{name: "object", data: `{"n":{}}`},
		{name: "array", data: `{"n":[]}`},
		{name: "array of nulls", data: `{"n":[null]}`},
		{name: "array of objects", data: `{"n":[{}]}`},
		{name: "string null", data: `{"n":"null"}`},
	}
	isNull := append(commonMissing(true), present...)
	notNull := append(commonMissing(false), present...)
	for i := range present {
		notNull[len(notNull)-len(present)+i].want = true
	}
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.n"}, isNull)
	checkAdvanced(t, schemas.AdvancedFilter{OperatorType: schemas.OpIsNotNull, Key: "data.n"}, notNull)
}

func TestAdvancedNestedKeys(t *testing.T) {
	const data = `{"appEventTypeDetail":{"action":"Started","depth":{"x":{"y":3}}},"siteName":"contoso","a.b":1,"Key":"exact","kEY":"fold","dup":1,"dup":2,"list":[{"id":1}]}`
	for _, tc := range []struct {
		af   schemas.AdvancedFilter
		want bool
	}{
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.appEventTypeDetail.action", Values: afValues("started")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "data.appEventTypeDetail.depth.x.y", Values: afValues(3.0)}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.appEventTypeDetail.depth.x.z"}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.appEventTypeDetail.action.x"}, true},
		// Names match ignoring case when nothing matches exactly.
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "Data.SiteName", Values: afValues("contoso")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.Key", Values: afValues("exact")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.kEY", Values: afValues("fold")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.key", Values: afValues("exact")}, true},
		// Of duplicate members the last wins.
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "data.dup", Values: afValues(2.0)}, true},
		// No escaping: a name with a dot cannot be reached.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.a.b"}, true},
		// Paths do not index arrays.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.list.id"}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNotNull, Key: "data"}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data."}, true},
	} {
		f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{tc.af}}, "")
		if got := f.Match(ceEvent(t, `,"data":`+data)); got != tc.want {
			t.Errorf("%s %s %v: got %v, want %v", tc.af.Key, tc.af.OperatorType, operands(tc.af), got, tc.want)
		}
	}
}

// TestAdvancedCloudEventKeys checks keys for CloudEvents delivery: the
// attribute names, extensions included.
func TestAdvancedCloudEventKeys(t *testing.T) {
	e := ceEvent(t, `,"datacontenttype":"application/json","dataschema":"https://example.com/s","comexampleextension1":"value","comexampleothervalue":5,"flag":true,"data":{"appinfoA":"abc","appinfoB":123,"appinfoC":true}`)
	bin := ceEvent(t, `,"data_base64":"aGVsbG8="`)
	for _, tc := range []struct {
		af   schemas.AdvancedFilter
		e    *Event
		want bool
	}{
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "id", Values: afValues("E1")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "source", Values: afValues("/orders")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "type", Values: afValues("order.created")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "Type", Values: afValues("order.created")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringBeginsWith, Key: "subject", Values: afValues("/ORDERS/")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "specversion", Values: afValues("1.0")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringBeginsWith, Key: "time", Values: afValues("2026-01-02T")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "datacontenttype", Values: afValues("application/json")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "dataschema", Values: afValues("/s")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "comexampleextension1", Values: afValues("VALUE")}, e, true},
		// The filtering page's own example: a numeric extension with
		// StringBeginsWith.
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringBeginsWith, Key: "comexampleothervalue", Values: afValues("5", "1")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "comexampleothervalue", Values: afValues(5.0)}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpBoolEquals, Key: "flag", Value: true}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "nosuchextension"}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.appinfoA", Values: afValues("abc")}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberGreaterThan, Key: "data.appinfoB", Value: 100.0}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpBoolEquals, Key: "data.appinfoC", Value: true}, e, true},
		// Event Grid schema names are not CloudEvents attributes.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "eventType"}, e, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "topic"}, e, true},
		// An event without a subject has none.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "subject"}, ceEventNoSubject(t), true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringNotContains, Key: "subject", Values: afValues("x")}, ceEventNoSubject(t), false},
		// Binary data is data_base64, not data.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data"}, bin, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data_base64", Values: afValues("aGVsbG8=")}, bin, true},
	} {
		f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{tc.af}}, schemas.CloudEventSchemaV1_0)
		if got := f.Match(tc.e); got != tc.want {
			t.Errorf("%s %s %v: got %v, want %v", tc.af.Key, tc.af.OperatorType, operands(tc.af), got, tc.want)
		}
	}
}

func ceEventNoSubject(t testing.TB) *Event {
	t.Helper()
	e, err := ParseEvent([]byte(`{"specversion":"1.0","id":"e1","source":"/orders","type":"T","time":"2026-01-02T15:04:05Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

// egEvent stores an Event Grid schema event as ingest does.
func egEvent(t testing.TB, event string) *Event {
	t.Helper()
	evs, err := schemas.ParseEventGridEvents([]byte("["+event+"]"), "/topics/orders")
	if err != nil {
		t.Fatalf("ParseEventGridEvents(%s): %v", event, err)
	}
	e, err := ParseEvent(evs[0].JSON)
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

// TestAdvancedEventGridKeys checks keys for Event Grid schema delivery: the
// Event Grid fields, valued as schemas.ToEventGrid delivers them.
func TestAdvancedEventGridKeys(t *testing.T) {
	full := egEvent(t, `{"id":"e1","subject":"/orders/1","eventType":"Order.Created","eventTime":"2026-01-02T15:04:05+0000","dataVersion":"2.0","data":{"color":"red","n":5}}`)
	bare := egEvent(t, `{"id":"e2","subject":"","eventType":"Order.Created","eventTime":"2026-01-02T15:04:05Z"}`)
	fromCE := ceEvent(t, `,"dataversion":7,"egeventtime":"2026-01-02T16:04:05+0100","data_base64":"aGVsbG8="`)
	otherInstant := ceEvent(t, `,"egeventtime":"2026-01-02T15:04:06+0000"`)
	for _, tc := range []struct {
		af   schemas.AdvancedFilter
		e    *Event
		want bool
	}{
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "id", Values: afValues("e1")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "ID", Values: afValues("e1")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "topic", Values: afValues("/topics/orders")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "Topic", Values: afValues("/topics/orders")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "subject", Values: afValues("/orders/1")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "eventType", Values: afValues("order.created")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "EventType", Values: afValues("order.created")}, full, true},
		// eventTime as sent, not as stored in time.
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "eventTime", Values: afValues("+0000")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "eventTime", Values: afValues("Z")}, bare, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "eventTime", Values: afValues("+0100")}, fromCE, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "eventTime", Values: afValues("05Z")}, otherInstant, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "dataVersion", Values: afValues("2.0")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "metadataVersion", Values: afValues("1")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.color", Values: afValues("RED")}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "Data.N", Values: afValues(5.0)}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNotNull, Key: "data"}, full, true},
		// Delivered with subject "" and dataVersion "": present, empty.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNotNull, Key: "subject"}, bare, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringNotContains, Key: "subject", Values: afValues("x")}, bare, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "dataVersion", Values: afValues("")}, bare, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "data"}, bare, true},
		// A number dataversion is delivered as a string.
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "dataVersion", Values: afValues("7")}, fromCE, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "dataVersion", Values: afValues(7.0)}, fromCE, false},
		// data_base64 is delivered as data.
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data", Values: afValues("aGVsbG8=")}, fromCE, true},
		// CloudEvents names are not Event Grid fields.
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "type"}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "source"}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "specversion"}, full, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined, Key: "dataversion.x"}, full, true},
	} {
		f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{tc.af}}, schemas.EventGridSchema)
		if got := f.Match(tc.e); got != tc.want {
			t.Errorf("%s %s %v on %s: got %v, want %v", tc.af.Key, tc.af.OperatorType, operands(tc.af), tc.e.JSON, got, tc.want)
		}
	}
}

func TestAdvancedFiltersAreANDed(t *testing.T) {
	e := ceEvent(t, `,"data":{"color":"red","n":5}`)
	color := schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.color", Values: afValues("red")}
	notColor := schemas.AdvancedFilter{OperatorType: schemas.OpStringNotIn, Key: "data.color", Values: afValues("red")}
	small := schemas.AdvancedFilter{OperatorType: schemas.OpNumberLessThan, Key: "data.n", Value: 10.0}
	big := schemas.AdvancedFilter{OperatorType: schemas.OpNumberGreaterThan, Key: "data.n", Value: 10.0}
	for _, tc := range []struct {
		name string
		f    schemas.Filter
		want bool
	}{
		{"both pass", schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{color, small}}, true},
		{"second fails", schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{color, big}}, false},
		{"first fails", schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{big, color}}, false},
		{"same key twice", schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{color, notColor}}, false},
		{"with the type filter", schemas.Filter{IncludedEventTypes: []string{"Order.Created"}, AdvancedFilters: []schemas.AdvancedFilter{color}}, true},
		{"type filter fails", schemas.Filter{IncludedEventTypes: []string{"Order.Deleted"}, AdvancedFilters: []schemas.AdvancedFilter{color}}, false},
		{"subject filter fails", schemas.Filter{SubjectBeginsWith: "/invoices/", AdvancedFilters: []schemas.AdvancedFilter{color}}, false},
		{"advanced fails, basic passes", schemas.Filter{SubjectBeginsWith: "/orders/", AdvancedFilters: []schemas.AdvancedFilter{big}}, false},
	} {
		f := NewFilter(&tc.f, "")
		if got := f.Match(e); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAdvancedLargeValues checks string filters on a value near the 1 MB
// event limit, and keys after it.
func TestAdvancedLargeValues(t *testing.T) {
	big := strings.Repeat("ab", 500_000)
	e := ceEvent(t, `,"data":{"big":"`+big+`x","after":7}`)
	for _, tc := range []struct {
		af   schemas.AdvancedFilter
		want bool
	}{
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringContains, Key: "data.big", Values: afValues(strings.Repeat("BA", 256))}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringContains, Key: "data.big", Values: afValues(strings.Repeat("ab", 255) + "x")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringContains, Key: "data.big", Values: afValues(strings.Repeat("ab", 255) + "y")}, false},
		{schemas.AdvancedFilter{OperatorType: schemas.OpStringEndsWith, Key: "data.big", Values: afValues("BX")}, true},
		{schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "data.after", Values: afValues(7.0)}, true},
	} {
		f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{tc.af}}, "")
		if got := f.Match(e); got != tc.want {
			t.Errorf("%s %s: got %v, want %v", tc.af.Key, tc.af.OperatorType, got, tc.want)
		}
	}
}

// TestAdvancedAllocations pins that number, boolean and null filters read
// an event without allocating: the event is scanned in place.
func TestAdvancedAllocations(t *testing.T) {
	e := ceEvent(t, `,"data":{"customer":{"id":"c1","tier":2},"total":120.5,"paid":true,"items":[1,2,3]}`)
	f := NewFilter(&schemas.Filter{EnableAdvancedFilteringOnArrays: true, AdvancedFilters: []schemas.AdvancedFilter{
		{OperatorType: schemas.OpNumberGreaterThan, Key: "data.total", Value: 100.0},
		{OperatorType: schemas.OpBoolEquals, Key: "data.paid", Value: true},
		{OperatorType: schemas.OpNumberIn, Key: "data.customer.tier", Values: afValues(1.0, 2.0)},
		{OperatorType: schemas.OpNumberInRange, Key: "data.items", Values: afValues(afValues(3.0, 4.0))},
		{OperatorType: schemas.OpIsNotNull, Key: "data.customer.id"},
		{OperatorType: schemas.OpIsNullOrUndefined, Key: "data.coupon"},
	}}, "")
	if !f.Match(e) {
		t.Fatal("filter does not match")
	}
	if n := testing.AllocsPerRun(100, func() { f.Match(e) }); n != 0 {
		t.Errorf("Match allocates %v times per event, want 0", n)
	}
}
