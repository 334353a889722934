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
			f := NewFilter(tc.filter)
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
	f := NewFilter(&schemas.Filter{AdvancedFilters: []schemas.AdvancedFilter{
		{OperatorType: schemas.OpStringIn, Key: "data.color", Values: []any{"red"}},
	}})
	if r := f.Unsupported(); !strings.Contains(r, "advanced filter") {
		t.Errorf("Unsupported() = %q, want a reason naming advanced filters", r)
	}
}

func TestNewFilterCopies(t *testing.T) {
	sf := &schemas.Filter{IncludedEventTypes: []string{"a"}}
	f := NewFilter(sf)
	sf.IncludedEventTypes[0] = "b"
	if !f.Match(&Event{Type: "a"}) {
		t.Error("a change to the schemas.Filter changed the compiled Filter")
	}
}
