package dispatch

import (
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/schemas"
)

// FuzzFilterMatch checks that filters never panic on arbitrary event JSON
// (stored events are well-formed, but the evaluator must not trust that)
// and arbitrary filters, valid or not, and that opposite operators never
// both match.
//
// Inputs: the event; a filter as JSON (skipped if it does not decode); and
// one key, operator and operands, from which the pairs of opposites are
// built.
func FuzzFilterMatch(f *testing.F) {
	f.Add([]byte(`{"id":"1","source":"/s","type":"T","subject":"a/b","data":{"n":5,"s":"Red","a":[1,"x",true,null],"o":{"k":{"v":false}}}}`),
		[]byte(`{"advancedFilters":[{"operatorType":"NumberIn","key":"data.n","values":[5]}]}`),
		uint8(0), "data.n", "red", 5.0, false, false)
	f.Add([]byte(`{"id":"1","data":{"a":[{"x":1}],"n":null}}`),
		[]byte(`{"enableAdvancedFilteringOnArrays":true,"advancedFilters":[{"operatorType":"StringContains","key":"data.a","values":["x"]},{"operatorType":"NumberInRange","key":"data.a","values":[[0,2]]}]}`),
		uint8(6), "data.a", "x", 1.0, true, false)
	f.Add([]byte(`{"id":"e","source":"/t","type":"T","time":"2026-01-02T15:04:05Z","egeventtime":"2026-01-02T15:04:05+0000","dataversion":7,"data_base64":"aGk="}`),
		[]byte(`{"advancedFilters":[{"operatorType":"StringEndsWith","key":"eventTime","values":["+0000"]},{"operatorType":"StringIn","key":"dataVersion","values":["7"]}]}`),
		uint8(16), "eventTime", "+0000", 0.0, false, true)
	f.Add([]byte(`{"data":{"s":"\u212Aelvin \ud800 \"q\"","n":-1e400,"b":tru}}`),
		[]byte(`{"advancedFilters":[{"operatorType":"Nope","key":"data..s","value":"x"}]}`),
		uint8(9), "data.s", "K", -1.0, true, false)
	f.Add([]byte(`[1,2]`), []byte(`null`), uint8(18), "", "", 0.0, false, false)
	f.Add([]byte(`{"data":[`), []byte(`{}`), uint8(200), "data", "\xff", 2.5, true, true)

	f.Fuzz(func(t *testing.T, event, filterJSON []byte, op uint8, key, str string, num float64, arrays, eventGrid bool) {
		schema := schemas.CloudEventSchemaV1_0
		if eventGrid {
			schema = schemas.EventGridSchema
		}
		e := &Event{JSON: event, Type: "T", Subject: "a/b"}

		var sf schemas.Filter
		if json.Unmarshal(filterJSON, &sf) == nil {
			NewFilter(&sf, schema).Match(e)
			_ = NewFilter(&sf, schema).Unsupported()
		}

		// One filter of any operator with operands of any type.
		ops := schemas.Operators()
		wrong := []any{str, num, arrays, nil, []any{num}, []any{str, num}, map[string]any{}}
		af := schemas.AdvancedFilter{OperatorType: ops[int(op)%len(ops)], Key: key}
		if op >= 2*uint8(len(ops)) {
			af.Value, af.Values = wrong[int(op)%len(wrong)], wrong
		} else {
			af.Value, af.Values = num, []any{num, str, []any{num, num + 1}}
		}
		NewFilter(&schemas.Filter{EnableAdvancedFilteringOnArrays: arrays, AdvancedFilters: []schemas.AdvancedFilter{af}}, schema).Match(e)

		// Opposite operators on the same key never both match; of
		// IsNullOrUndefined and IsNotNull exactly one does.
		match := func(af schemas.AdvancedFilter) bool {
			af.Key = key
			nf := NewFilter(&schemas.Filter{EnableAdvancedFilteringOnArrays: arrays, AdvancedFilters: []schemas.AdvancedFilter{af}}, schema)
			if r := nf.Unsupported(); r != "" {
				t.Fatalf("Unsupported() = %q for a valid filter", r)
			}
			return nf.Match(e)
		}
		lo, hi := num, num+1
		if hi < lo { // NaN or overflow: keep the pair valid
			lo, hi = 0, 1
		}
		for _, pair := range [][2]schemas.AdvancedFilter{
			{{OperatorType: schemas.OpNumberIn, Values: []any{num}}, {OperatorType: schemas.OpNumberNotIn, Values: []any{num}}},
			{{OperatorType: schemas.OpNumberInRange, Values: []any{[]any{lo, hi}}}, {OperatorType: schemas.OpNumberNotInRange, Values: []any{[]any{lo, hi}}}},
			{{OperatorType: schemas.OpStringIn, Values: []any{str}}, {OperatorType: schemas.OpStringNotIn, Values: []any{str}}},
			{{OperatorType: schemas.OpStringContains, Values: []any{str}}, {OperatorType: schemas.OpStringNotContains, Values: []any{str}}},
			{{OperatorType: schemas.OpStringBeginsWith, Values: []any{str}}, {OperatorType: schemas.OpStringNotBeginsWith, Values: []any{str}}},
			{{OperatorType: schemas.OpStringEndsWith, Values: []any{str}}, {OperatorType: schemas.OpStringNotEndsWith, Values: []any{str}}},
		} {
			if match(pair[0]) && match(pair[1]) {
				t.Errorf("%s and %s on %q both match %q", pair[0].OperatorType, pair[1].OperatorType, key, event)
			}
		}
		if match(schemas.AdvancedFilter{OperatorType: schemas.OpIsNullOrUndefined}) == match(schemas.AdvancedFilter{OperatorType: schemas.OpIsNotNull}) {
			t.Errorf("IsNullOrUndefined and IsNotNull on %q agree on %q", key, event)
		}
	})
}
