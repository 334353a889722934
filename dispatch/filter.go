package dispatch

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schemas"
)

// Filter is a subscription's filter, ready to match events: Event Grid's
// basic and advanced filters, all ANDed —
//
//   - includedEventTypes: the event's type equals one of them, ignoring
//     case; an empty list admits every type;
//   - subjectBeginsWith and subjectEndsWith: plain prefix and suffix (no
//     wildcards, no path semantics), ignoring case unless
//     isSubjectCaseSensitive. An event without a subject has subject "";
//   - advancedFilters, with enableAdvancedFilteringOnArrays: see
//     advanced.go for the rules and where they come from.
//
// A Filter is safe for concurrent use.
type Filter struct {
	types          []string
	prefix, suffix string
	caseSensitive  bool
	advanced       *advanced // nil without advanced filters
	unsupported    string
}

// NewFilter compiles f for a subscription whose events are delivered in
// deliverySchema (schemas.EventGridSchema, or CloudEventSchemaV1_0; ""
// counts as the latter): advanced filter keys name the fields of the
// schema delivered. A nil f matches every event. f is copied: later changes
// to it do not affect the Filter.
func NewFilter(f *schemas.Filter, deliverySchema string) *Filter {
	if f == nil {
		return &Filter{}
	}
	nf := &Filter{
		types:         append([]string(nil), f.IncludedEventTypes...),
		prefix:        f.SubjectBeginsWith,
		suffix:        f.SubjectEndsWith,
		caseSensitive: f.IsSubjectCaseSensitive,
	}
	if len(f.AdvancedFilters) > 0 {
		nf.advanced, nf.unsupported = compileAdvanced(f, deliverySchema)
	}
	return nf
}

// Unsupported returns why the filter cannot be evaluated faithfully, or
// "". A subscription that passed schemas.Validate always gives "": what is
// left is an advanced filter with an unknown operator or operands of the
// wrong type, which Match treats as matching nothing. A dispatcher must not
// deliver through a filter whose Unsupported is not empty.
func (f *Filter) Unsupported() string { return f.unsupported }

// Match reports whether e passes the filter. Advanced filters read e.JSON,
// only after the basic filters pass.
func (f *Filter) Match(e *Event) bool {
	if len(f.types) > 0 {
		ok := false
		for _, t := range f.types {
			if strings.EqualFold(t, e.Type) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.caseSensitive {
		if !strings.HasPrefix(e.Subject, f.prefix) || !strings.HasSuffix(e.Subject, f.suffix) {
			return false
		}
	} else if !hasPrefixFold(e.Subject, f.prefix) || !hasSuffixFold(e.Subject, f.suffix) {
		return false
	}
	return f.advanced == nil || f.advanced.match(e.JSON)
}

// hasPrefixFold is strings.HasPrefix under the case folding of
// strings.EqualFold. It compares rune by rune rather than lower-casing
// both strings: case mappings can change a string's length in bytes.
func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		pr, pn := utf8.DecodeRuneInString(prefix)
		sr, sn := utf8.DecodeRuneInString(s)
		if !equalFoldRune(pr, sr) {
			return false
		}
		prefix, s = prefix[pn:], s[sn:]
	}
	return true
}

// hasSuffixFold is strings.HasSuffix under the case folding of
// strings.EqualFold.
func hasSuffixFold(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		xr, xn := utf8.DecodeLastRuneInString(suffix)
		sr, sn := utf8.DecodeLastRuneInString(s)
		if !equalFoldRune(xr, sr) {
			return false
		}
		suffix, s = suffix[:len(suffix)-xn], s[:len(s)-sn]
	}
	return true
}

// equalFoldRune reports whether a and b are equal under simple Unicode
// case folding, as strings.EqualFold compares runes.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
