package dispatch

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schemas"
)

func TestFilterMatch(t *testing.T) {
	ev := func(typ, subject string) *Event { return &Event{Type: typ, Subject: subject} }
	for _, tc := range []struct {
		name   string
		filter *schemas.Filter
		event  *Event
		want   bool
	}{
		{"nil filter matches all", nil, ev("A", "x"), true},
		{"empty filter matches all", &schemas.Filter{}, ev("A", ""), true},

		{"type equal", &schemas.Filter{IncludedEventTypes: []string{"Order.Created"}}, ev("Order.Created", ""), true},
		{"type case-insensitive", &schemas.Filter{IncludedEventTypes: []string{"order.created"}}, ev("ORDER.Created", ""), true},
		{"type any of", &schemas.Filter{IncludedEventTypes: []string{"a", "b", "c"}}, ev("B", ""), true},
		{"type none of", &schemas.Filter{IncludedEventTypes: []string{"a", "b"}}, ev("ab", ""), false},
		{"type is equality, not prefix", &schemas.Filter{IncludedEventTypes: []string{"Order"}}, ev("Order.Created", ""), false},
		{"type non-ASCII fold", &schemas.Filter{IncludedEventTypes: []string{"ÄNDERUNG"}}, ev("änderung", ""), true},
		{"type case-insensitive even with case-sensitive subjects",
			&schemas.Filter{IncludedEventTypes: []string{"a"}, IsSubjectCaseSensitive: true}, ev("A", ""), true},

		{"prefix", &schemas.Filter{SubjectBeginsWith: "/orders/"}, ev("t", "/orders/1"), true},
		{"prefix case-insensitive", &schemas.Filter{SubjectBeginsWith: "/Orders/"}, ev("t", "/ORDERS/1"), true},
		{"prefix miss", &schemas.Filter{SubjectBeginsWith: "/orders/"}, ev("t", "/order/1"), false},
		{"prefix is plain text, no wildcards", &schemas.Filter{SubjectBeginsWith: "/orders/*"}, ev("t", "/orders/1"), false},
		{"prefix equal to subject", &schemas.Filter{SubjectBeginsWith: "abc"}, ev("t", "ABC"), true},
		{"prefix longer than subject", &schemas.Filter{SubjectBeginsWith: "abcd"}, ev("t", "abc"), false},
		{"prefix on empty subject", &schemas.Filter{SubjectBeginsWith: "a"}, ev("t", ""), false},
		{"prefix case-sensitive miss", &schemas.Filter{SubjectBeginsWith: "/Orders", IsSubjectCaseSensitive: true}, ev("t", "/orders/1"), false},
		{"prefix case-sensitive hit", &schemas.Filter{SubjectBeginsWith: "/Orders", IsSubjectCaseSensitive: true}, ev("t", "/Orders/1"), true},
		{"prefix non-ASCII fold", &schemas.Filter{SubjectBeginsWith: "Ärger/"}, ev("t", "ärger/x"), true},
		// U+212A KELVIN SIGN folds to k but is 3 bytes long: the usual
		// len(s) >= len(prefix) && EqualFold(s[:len(prefix)], prefix)
		// gets this wrong.
		{"prefix fold across byte lengths", &schemas.Filter{SubjectBeginsWith: "\u212Aey/"}, ev("t", "key/1"), true},

		{"suffix", &schemas.Filter{SubjectEndsWith: ".jpg"}, ev("t", "a/b.jpg"), true},
		{"suffix case-insensitive", &schemas.Filter{SubjectEndsWith: ".JPG"}, ev("t", "a/b.jpg"), true},
		{"suffix miss", &schemas.Filter{SubjectEndsWith: ".jpg"}, ev("t", "a/b.jpeg"), false},
		{"suffix longer than subject", &schemas.Filter{SubjectEndsWith: "x.jpg"}, ev("t", ".jpg"), false},
		{"suffix case-sensitive miss", &schemas.Filter{SubjectEndsWith: ".JPG", IsSubjectCaseSensitive: true}, ev("t", "a.jpg"), false},
		{"suffix fold across byte lengths", &schemas.Filter{SubjectEndsWith: "/\u212A"}, ev("t", "a/k"), true},

		{"all rules ANDed: all pass", &schemas.Filter{IncludedEventTypes: []string{"t"}, SubjectBeginsWith: "a/", SubjectEndsWith: ".x"}, ev("T", "A/b.X"), true},
		{"all rules ANDed: type fails", &schemas.Filter{IncludedEventTypes: []string{"u"}, SubjectBeginsWith: "a/", SubjectEndsWith: ".x"}, ev("t", "a/b.x"), false},
		{"all rules ANDed: prefix fails", &schemas.Filter{IncludedEventTypes: []string{"t"}, SubjectBeginsWith: "b/", SubjectEndsWith: ".x"}, ev("t", "a/b.x"), false},
		{"all rules ANDed: suffix fails", &schemas.Filter{IncludedEventTypes: []string{"t"}, SubjectBeginsWith: "a/", SubjectEndsWith: ".y"}, ev("t", "a/b.x"), false},
		{"prefix and suffix may overlap", &schemas.Filter{SubjectBeginsWith: "abc", SubjectEndsWith: "bcd"}, ev("t", "abcd"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFilter(tc.filter, schemas.CloudEventSchemaV1_0)
			if got := f.Match(tc.event); got != tc.want {
				t.Errorf("Match(type %q, subject %q) = %v, want %v", tc.event.Type, tc.event.Subject, got, tc.want)
			}
			if r := f.Unsupported(); r != "" {
				t.Errorf("Unsupported() = %q for a basic filter", r)
			}
		})
	}
}

func TestFilterUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		af   schemas.AdvancedFilter
		want string // part of the reason; "" for none
	}{
		{"valid advanced filter", schemas.AdvancedFilter{OperatorType: schemas.OpStringIn, Key: "data.color", Values: []any{"red"}}, ""},
		{"unknown operator", schemas.AdvancedFilter{OperatorType: "NumberEquals", Key: "data.n", Value: 1.0}, `advancedFilters[0]: unknown operatorType "NumberEquals"`},
		{"number as string", schemas.AdvancedFilter{OperatorType: schemas.OpNumberIn, Key: "data.n", Values: []any{"5"}}, "NumberIn needs number values"},
		{"missing value", schemas.AdvancedFilter{OperatorType: schemas.OpNumberLessThan, Key: "data.n"}, "NumberLessThan needs a number value"},
		{"bool as string", schemas.AdvancedFilter{OperatorType: schemas.OpBoolEquals, Key: "data.b", Value: "true"}, "BoolEquals needs a boolean value"},
		{"range not a pair", schemas.AdvancedFilter{OperatorType: schemas.OpNumberInRange, Key: "data.n", Values: []any{[]any{1.0}}}, "[low, high] pairs"},
		{"string as number", schemas.AdvancedFilter{OperatorType: schemas.OpStringContains, Key: "data.s", Values: []any{1.0}}, "StringContains needs string values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{tc.af}}, schemas.CloudEventSchemaV1_0)
			r := f.Unsupported()
			switch {
			case tc.want == "" && r != "":
				t.Errorf("Unsupported() = %q, want none", r)
			case tc.want != "" && !strings.Contains(r, tc.want):
				t.Errorf("Unsupported() = %q, want a reason containing %q", r, tc.want)
			}
			// What cannot be evaluated matches nothing.
			e := ceEvent(t, `,"data":{"n":5,"b":true,"s":"x","color":"red"}`)
			if got, want := f.Match(e), tc.want == ""; got != want {
				t.Errorf("Match = %v, want %v", got, want)
			}
		})
	}
}

func TestNewFilterCopies(t *testing.T) {
	sf := &schemas.Filter{IncludedEventTypes: []string{"a"}}
	sf.AdvancedFilters = []schemas.AdvancedFilter{{OperatorType: schemas.OpStringIn, Key: "subject", Values: []any{"s"}}}
	f := NewFilter(sf, "")
	sf.IncludedEventTypes[0] = "b"
	sf.AdvancedFilters[0].Values[0] = "t"
	sf.AdvancedFilters[0].Key = "id"
	if !f.Match(&Event{Type: "a", Subject: "s", JSON: []byte(`{"id":"x","subject":"s"}`)}) {
		t.Error("a change to the schemas.Filter changed the compiled Filter")
	}
}
