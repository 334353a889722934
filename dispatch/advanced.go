package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schemas"
)

// Advanced filters, as Event Grid documents them on "Understand event
// filtering for Event Grid subscriptions"
// (learn.microsoft.com/azure/event-grid/event-filtering; MicrosoftDocs/azure-docs
// articles/event-grid/event-filtering.md, the version of 2022-09-09), here
// "the filtering page". Each rule below that is not obvious names where it
// comes from.
//
// The values of one filter are ORed and the filters are ANDed ("OR and
// AND"). A key is a top-level attribute, or a path of member names joined
// by dots; there is no escaping ("Limitations"). String comparisons ignore
// case ("All string comparisons aren't case-sensitive").
//
// What a filter sees of an event's value at its key:
//
//   - missing (no such member, or a path through something that is not an
//     object) and JSON null: IsNullOrUndefined matches, IsNotNull does not
//     ("evaluates to true if the key's value is NULL or undefined"). Of the
//     other operators only NumberNotIn and StringNotIn match (the note
//     below StringNotIn: "evaluated as matched for … NumberNotIn,
//     StringNotIn", "not matched" for the rest it lists). The note predates
//     NumberInRange and NumberNotInRange; sluice treats NumberNotInRange like
//     the other Not operators that came with it (StringNotContains,
//     StringNotBeginsWith, StringNotEndsWith): not matched. null counts as
//     undefined for every operator, as CloudEvents treats a null attribute
//     as absent.
//   - a number, string or boolean: one element.
//   - an array: without enableAdvancedFilteringOnArrays it matches nothing,
//     Not operators included ("If an incoming event has an array value for
//     the advanced filter's key, the matching operation fails", Event Grid
//     on IoT Edge, articles/event-grid/edge/advanced-filtering.md). With it,
//     its elements ("If the key is an array, all the values in the array are
//     checked").
//   - an object, or an array with an object or array in it: matches
//     nothing, Not operators included ("Event Grid doesn't support filtering
//     on an array of objects. It only allows String, Boolean, Numbers, and
//     Array of the same types").
//
// A positive operator matches when any element hits any value (MATCH in the
// page's pseudo code); a Not operator matches when no element hits any value
// (FAIL_MATCH). Elements of the wrong type for the operator are skipped
// ("Any key values with data types that don't match the filter's data type
// are ignored"), so they fail positive operators and pass Not operators. A
// string is the wrong type for the Number operators even if it holds a
// number. A number or boolean that is the key's whole value is its JSON text
// to the String operators: the page's CloudEvents example filters the
// numeric extension "comexampleothervalue": 5 with StringBeginsWith "5".
// Inside arrays the page's rule holds: only strings are strings.
//
// Numbers compare as float64 (Event Grid uses .NET decimal: numbers beyond
// float64's precision may compare differently). NumberInRange's bounds are
// inclusive (pseudo code: key >= a AND key <= b).

// opKind is a compiled advanced filter operator.
type opKind uint8

const (
	opUnsupported opKind = iota
	opNumberIn
	opNumberNotIn
	opNumberLessThan
	opNumberGreaterThan
	opNumberLessThanOrEquals
	opNumberGreaterThanOrEquals
	opNumberInRange
	opNumberNotInRange
	opBoolEquals
	opStringContains
	opStringNotContains
	opStringBeginsWith
	opStringNotBeginsWith
	opStringEndsWith
	opStringNotEndsWith
	opStringIn
	opStringNotIn
	opIsNullOrUndefined
	opIsNotNull
)

var opKinds = map[string]opKind{
	schemas.OpNumberIn:                  opNumberIn,
	schemas.OpNumberNotIn:               opNumberNotIn,
	schemas.OpNumberLessThan:            opNumberLessThan,
	schemas.OpNumberGreaterThan:         opNumberGreaterThan,
	schemas.OpNumberLessThanOrEquals:    opNumberLessThanOrEquals,
	schemas.OpNumberGreaterThanOrEquals: opNumberGreaterThanOrEquals,
	schemas.OpNumberInRange:             opNumberInRange,
	schemas.OpNumberNotInRange:          opNumberNotInRange,
	schemas.OpBoolEquals:                opBoolEquals,
	schemas.OpStringContains:            opStringContains,
	schemas.OpStringNotContains:         opStringNotContains,
	schemas.OpStringBeginsWith:          opStringBeginsWith,
	schemas.OpStringNotBeginsWith:       opStringNotBeginsWith,
	schemas.OpStringEndsWith:            opStringEndsWith,
	schemas.OpStringNotEndsWith:         opStringNotEndsWith,
	schemas.OpStringIn:                  opStringIn,
	schemas.OpStringNotIn:               opStringNotIn,
	schemas.OpIsNullOrUndefined:         opIsNullOrUndefined,
	schemas.OpIsNotNull:                 opIsNotNull,
}

// negated reports whether op is a Not operator: it matches when no element
// hits.
func (op opKind) negated() bool {
	switch op {
	case opNumberNotIn, opNumberNotInRange, opStringNotContains, opStringNotBeginsWith,
		opStringNotEndsWith, opStringNotIn:
		return true
	}
	return false
}

// advancedCond is one compiled advanced filter.
type advancedCond struct {
	op     opKind
	ref    int          // index of the key's value in advanced.refs
	num    float64      // NumberLessThan … NumberGreaterThanOrEquals
	nums   []float64    // NumberIn, NumberNotIn
	ranges [][2]float64 // NumberInRange, NumberNotInRange
	b      bool         // BoolEquals
	strs   [][]byte     // String operators, case-folded by appendFold
}

// advanced is a filter's compiled advanced filters and the keys they read.
type advanced struct {
	conds  []advancedCond
	arrays bool // enableAdvancedFilteringOnArrays
	// top holds the top-level members the filters read; nested keys hang
	// below. Every node has a slot in a filterScan's raw values.
	top    []*keyNode
	nslots int
	refs   []keyRef
}

// keyNode is one member name on the paths the filters read.
type keyNode struct {
	name     string
	slot     int
	children []*keyNode
}

// refKind says how a key's value is made from the members read, for the
// Event Grid schema keys that are not stored as they are delivered (see
// schemas.ToEventGrid).
type refKind uint8

const (
	refMember            refKind = iota // the member at slot
	refAbsent                           // never present
	refEGSubject                        // subject, or "" if none
	refEGEventTime                      // egeventtime (alt) if it is the same instant as time (slot), else time
	refEGDataVersion                    // dataversion as a string, or "" if none
	refEGMetadataVersion                // always "1"
	refEGData                           // data, else data_base64 (alt)
)

// keyRef is where a key's value comes from.
type keyRef struct {
	kind      refKind
	slot, alt int
}

// Event Grid schema fields, lower-cased: keys name them in any case (the
// filtering page lists ID, Topic, Subject, EventType, DataVersion).
const (
	egID              = "id"
	egTopic           = "topic"
	egSubject         = "subject"
	egEventType       = "eventtype"
	egEventTime       = "eventtime"
	egDataVersion     = "dataversion"
	egMetadataVersion = "metadataversion"
	egData            = "data"

	ceEventGridTime = "egeventtime"
	ceDataBase64    = "data_base64"
)

// compileAdvanced compiles a filter's advanced filters for events delivered
// in deliverySchema, and says what it cannot evaluate ("" if nothing).
func compileAdvanced(f *schemas.Filter, deliverySchema string) (*advanced, string) {
	a := &advanced{arrays: f.EnableAdvancedFilteringOnArrays}
	refIndex := map[keyRef]int{}
	var problems []string
	for i := range f.AdvancedFilters {
		af := &f.AdvancedFilters[i]
		ref := a.resolveKey(af.Key, deliverySchema == schemas.EventGridSchema)
		ri, ok := refIndex[ref]
		if !ok {
			ri = len(a.refs)
			refIndex[ref] = ri
			a.refs = append(a.refs, ref)
		}
		c, err := compileCondition(af)
		if err != nil {
			problems = append(problems, fmt.Sprintf("advancedFilters[%d]: %v", i, err))
		}
		c.ref = ri
		a.conds = append(a.conds, c)
	}
	if len(problems) > 0 {
		return a, "the subscription has advanced filters sluice cannot evaluate: " + strings.Join(problems, "; ")
	}
	return a, ""
}

// compileCondition compiles one advanced filter. Operands were checked by
// schemas.Validate; what does not have the operator's type is reported.
func compileCondition(af *schemas.AdvancedFilter) (advancedCond, error) {
	op, ok := opKinds[af.OperatorType]
	if !ok {
		return advancedCond{}, fmt.Errorf("unknown operatorType %q", af.OperatorType)
	}
	c := advancedCond{op: op}
	switch op {
	case opNumberLessThan, opNumberGreaterThan, opNumberLessThanOrEquals, opNumberGreaterThanOrEquals:
		n, ok := af.Value.(float64)
		if !ok {
			return advancedCond{}, fmt.Errorf("%s needs a number value", af.OperatorType)
		}
		c.num = n
	case opBoolEquals:
		b, ok := af.Value.(bool)
		if !ok {
			return advancedCond{}, fmt.Errorf("%s needs a boolean value", af.OperatorType)
		}
		c.b = b
	case opNumberIn, opNumberNotIn:
		for _, v := range af.Values {
			n, ok := v.(float64)
			if !ok {
				return advancedCond{}, fmt.Errorf("%s needs number values", af.OperatorType)
			}
			c.nums = append(c.nums, n)
		}
	case opNumberInRange, opNumberNotInRange:
		for _, v := range af.Values {
			pair, ok := v.([]any)
			var lo, hi float64
			var okLo, okHi bool
			if ok && len(pair) == 2 {
				lo, okLo = pair[0].(float64)
				hi, okHi = pair[1].(float64)
			}
			if !okLo || !okHi {
				return advancedCond{}, fmt.Errorf("%s needs [low, high] pairs of numbers", af.OperatorType)
			}
			c.ranges = append(c.ranges, [2]float64{lo, hi})
		}
	case opStringContains, opStringNotContains, opStringBeginsWith, opStringNotBeginsWith,
		opStringEndsWith, opStringNotEndsWith, opStringIn, opStringNotIn:
		for _, v := range af.Values {
			s, ok := v.(string)
			if !ok {
				return advancedCond{}, fmt.Errorf("%s needs string values", af.OperatorType)
			}
			c.strs = append(c.strs, appendFold(nil, s))
		}
	}
	return c, nil
}

// resolveKey maps a key to the stored members it reads, adding them to the
// key tree. Events are stored as CloudEvents; for Event Grid schema
// subscriptions the keys are the Event Grid fields, which come from the
// CloudEvents attributes as schemas.ToEventGrid renders them.
func (a *advanced) resolveKey(key string, eventGrid bool) keyRef {
	path := strings.Split(key, ".")
	if !eventGrid {
		return keyRef{kind: refMember, slot: a.addPath(path)}
	}
	first := strings.ToLower(path[0])
	if len(path) > 1 {
		// Only data has members; the other fields are strings.
		if first != egData {
			return keyRef{kind: refAbsent}
		}
		return keyRef{kind: refMember, slot: a.addPath(append([]string{ceData}, path[1:]...))}
	}
	one := func(name string) int { return a.addPath([]string{name}) }
	switch first {
	case egID:
		return keyRef{kind: refMember, slot: one(ceID)}
	case egTopic:
		return keyRef{kind: refMember, slot: one(ceSource)}
	case egEventType:
		return keyRef{kind: refMember, slot: one(ceType)}
	case egSubject:
		return keyRef{kind: refEGSubject, slot: one(ceSubject)}
	case egEventTime:
		return keyRef{kind: refEGEventTime, slot: one(ceTime), alt: one(ceEventGridTime)}
	case egDataVersion:
		return keyRef{kind: refEGDataVersion, slot: one(ceDataVersion)}
	case egMetadataVersion:
		return keyRef{kind: refEGMetadataVersion}
	case egData:
		return keyRef{kind: refEGData, slot: one(ceData), alt: one(ceDataBase64)}
	}
	return keyRef{kind: refAbsent}
}

// addPath adds a path of member names to the key tree and returns the slot
// of its last node.
func (a *advanced) addPath(path []string) int {
	level := &a.top
	var node *keyNode
	for _, name := range path {
		node = nil
		for _, n := range *level {
			if n.name == name {
				node = n
				break
			}
		}
		if node == nil {
			node = &keyNode{name: name, slot: a.nslots}
			a.nslots++
			*level = append(*level, node)
		}
		level = &node.children
	}
	return node.slot
}

// filterScan is what one Match reads of one event: the raw value of every key
// node (nil if missing), and each key's value folded for the String
// operators, made at most once.
type filterScan struct {
	raw    [][]byte   // by key node slot
	exact  []bool     // raw[slot] matched the member name exactly
	folded []foldSpan // by ref, valid where fold is foldDone: arena[start:end]
	fold   []foldState
	arena  []byte // folded strings
}

// foldSpan is a part of the arena. (Slices of it kept in a slice would make the
// compiler move the stack buffers to the heap.)
type foldSpan struct{ start, end int }

// foldState says whether a key's folded string value has been made.
type foldState uint8

const (
	foldUnknown foldState = iota
	foldDone              // folded holds it
	foldNone              // the value has no string form
)

// match evaluates the advanced filters on a stored event: one pass over
// its top-level members, and one over each object on a key's path (data,
// data.a, …), never over what no key reads.
func (a *advanced) match(event []byte) bool {
	// Room on the stack for the common case, so that a Match allocates
	// nothing.
	var (
		rawBuf    [32][]byte
		exactBuf  [32]bool
		foldedBuf [schemas.MaxAdvancedFilters]foldSpan
		foldBuf   [schemas.MaxAdvancedFilters]foldState
		arenaBuf  [512]byte
		s         filterScan
	)
	s.arena = arenaBuf[:0]
	if a.nslots <= len(rawBuf) {
		s.raw, s.exact = rawBuf[:a.nslots], exactBuf[:a.nslots]
	} else {
		s.raw, s.exact = make([][]byte, a.nslots), make([]bool, a.nslots)
	}
	if n := len(a.refs); n <= len(foldedBuf) {
		s.folded, s.fold = foldedBuf[:n], foldBuf[:n]
	} else {
		s.folded, s.fold = make([]foldSpan, n), make([]foldState, n)
	}
	s.read(event, a.top)
	for i := range a.conds {
		c := &a.conds[i]
		if !c.eval(a.value(&s, c.ref), a.arrays, &s, c.ref) {
			return false
		}
	}
	return true
}

// read finds the members nodes name in the JSON object doc, then reads
// their children in the members that are objects. A member name matches a
// node's exactly or, failing that, ignoring case (Event Grid's own
// documentation writes keys like Data.Key1 and ID); of duplicate members
// the last wins, as encoding/json and Json.NET (by default) read them.
func (s *filterScan) read(doc []byte, nodes []*keyNode) {
	// A malformed document (stored events are not) leaves what was found.
	_ = forEachMember(doc, func(key, value []byte) (bool, error) {
		for _, n := range nodes {
			switch {
			case string(key) == n.name:
				s.raw[n.slot], s.exact[n.slot] = value, true
			case !s.exact[n.slot] && s.raw[n.slot] == nil && equalFoldBytes(key, n.name):
				s.raw[n.slot] = value
			}
		}
		return true, nil
	})
	for _, n := range nodes {
		if len(n.children) > 0 {
			if v := s.raw[n.slot]; v != nil && v[0] == '{' {
				s.read(v, n.children)
			}
		}
	}
}

var (
	jsonEmptyString = []byte(`""`)
	jsonOne         = []byte(`"1"`)
)

// value returns the raw JSON value of refs[ri] in the scanned event, or nil
// if it is missing.
func (a *advanced) value(s *filterScan, ri int) []byte {
	r := a.refs[ri]
	switch r.kind {
	case refMember:
		return s.raw[r.slot]
	case refEGSubject:
		if v := s.raw[r.slot]; v != nil && v[0] == '"' {
			return v
		}
		return jsonEmptyString
	case refEGEventTime:
		t, eg := s.raw[r.slot], s.raw[r.alt]
		if ts, ok := jsonString(t); ok {
			if egs, ok := jsonString(eg); ok && sameInstant(ts, egs) {
				return eg
			}
		}
		return t
	case refEGDataVersion:
		v := s.raw[r.slot]
		switch {
		case v == nil || isJSONNull(v):
			return jsonEmptyString
		case v[0] != '"':
			q, _ := json.Marshal(string(v))
			return q
		}
		return v
	case refEGMetadataVersion:
		return jsonOne
	case refEGData:
		if v := s.raw[r.slot]; v != nil {
			return v
		}
		return s.raw[r.alt]
	}
	return nil
}

// sameInstant reports whether an Event Grid eventTime as sent (RFC 3339, or
// with a +hhmm offset) is the instant t (RFC 3339), as schemas.ToEventGrid
// decides whether to deliver egeventtime.
func sameInstant(t, eventTime string) bool {
	ta, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return false
	}
	if n := len(eventTime); n > 5 && (eventTime[n-5] == '+' || eventTime[n-5] == '-') {
		eventTime = eventTime[:n-2] + ":" + eventTime[n-2:]
	}
	tb, err := time.Parse(time.RFC3339Nano, eventTime)
	return err == nil && ta.Equal(tb)
}

// jsonKind is the JSON type of a value, by its first bytes.
type jsonKind uint8

const (
	kindMissing jsonKind = iota // no value, or null
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
	kindInvalid // not JSON (stored events are JSON)
)

func isJSONNull(v []byte) bool { return string(v) == "null" }

func jsonKindOf(v []byte) jsonKind {
	if len(v) == 0 {
		return kindMissing
	}
	switch c := v[0]; {
	case c == '"':
		return kindString
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == '-' || c >= '0' && c <= '9':
		return kindNumber
	case string(v) == "true" || string(v) == "false":
		return kindBool
	case isJSONNull(v):
		return kindMissing
	}
	return kindInvalid
}

// eval reports whether the value v (raw JSON, nil if missing) at the
// condition's key passes it. s caches the key's folded string value.
func (c *advancedCond) eval(v []byte, arrays bool, s *filterScan, ref int) bool {
	k := jsonKindOf(v)
	switch c.op {
	case opUnsupported:
		return false
	case opIsNullOrUndefined:
		return k == kindMissing
	case opIsNotNull:
		return k != kindMissing
	}
	switch k {
	case kindMissing:
		return c.op == opNumberNotIn || c.op == opStringNotIn
	case kindObject:
		return false
	case kindArray:
		if !arrays {
			return false
		}
		return c.evalArray(v, s)
	}
	var hit bool
	if c.isString() {
		// A whole value that is a number or boolean is its JSON text.
		if s.fold[ref] == foldUnknown {
			s.fold[ref] = foldNone
			if sp, ok := s.foldValue(v, k, true); ok {
				s.folded[ref], s.fold[ref] = sp, foldDone
			}
		}
		if s.fold[ref] == foldDone {
			sp := s.folded[ref]
			hit = c.hitString(s.arena[sp.start:sp.end])
		}
	} else {
		hit = c.hit(v, k)
	}
	return hit != c.op.negated()
}

// evalArray evaluates the condition on the elements of the array v.
func (c *advancedCond) evalArray(v []byte, s *filterScan) bool {
	hit, unsupported := false, false
	err := forEachElement(v, func(e []byte) bool {
		k := jsonKindOf(e)
		if k == kindObject || k == kindArray {
			unsupported = true
			return false
		}
		if hit {
			return true // keep looking for objects
		}
		if c.isString() {
			if sp, ok := s.foldValue(e, k, false); ok {
				hit = c.hitString(s.arena[sp.start:sp.end])
				s.arena = s.arena[:sp.start]
			}
		} else {
			hit = c.hit(e, k)
		}
		return true
	})
	if err != nil || unsupported {
		return false
	}
	return hit != c.op.negated()
}

func (c *advancedCond) isString() bool { return c.op >= opStringContains && c.op <= opStringNotIn }

// foldValue returns a value's string for the String operators, folded, in
// the arena: a string's content or, if whole (not an array element), a
// number's or boolean's JSON text.
func (s *filterScan) foldValue(v []byte, k jsonKind, whole bool) (foldSpan, bool) {
	mark := len(s.arena)
	switch {
	case k == kindString:
		if len(v) < 2 || v[len(v)-1] != '"' {
			return foldSpan{}, false
		}
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 {
			foldTo(s, inner)
		} else if str, ok := jsonString(v); ok {
			foldTo(s, str)
		} else {
			return foldSpan{}, false
		}
	case whole && (k == kindNumber || k == kindBool):
		foldTo(s, v)
	default:
		return foldSpan{}, false
	}
	return foldSpan{mark, len(s.arena)}, true
}

// foldTo appends the fold of v to s.arena. It writes within the arena's
// capacity and reslices rather than appending: an append stored back
// through s would make the compiler move Match's stack buffers to the heap.
func foldTo[T string | []byte](s *filterScan, v T) {
	n := len(s.arena)
	if cap(s.arena)-n < len(v) {
		grown := make([]byte, n, 2*cap(s.arena)+len(v))
		copy(grown, s.arena)
		s.arena = grown
	}
	w := foldInto(s.arena[n:n+len(v)], v)
	s.arena = s.arena[:n+w]
}

// hit reports whether a number or boolean element hits any of the
// condition's values; elements of another type never do.
func (c *advancedCond) hit(e []byte, k jsonKind) bool {
	if c.op == opBoolEquals {
		return k == kindBool && (e[0] == 't') == c.b
	}
	if k != kindNumber {
		return false
	}
	n, err := strconv.ParseFloat(string(e), 64)
	if err != nil && !isRangeErr(err) {
		return false
	}
	switch c.op {
	case opNumberIn, opNumberNotIn:
		for _, x := range c.nums {
			if n == x {
				return true
			}
		}
	case opNumberLessThan:
		return n < c.num
	case opNumberGreaterThan:
		return n > c.num
	case opNumberLessThanOrEquals:
		return n <= c.num
	case opNumberGreaterThanOrEquals:
		return n >= c.num
	case opNumberInRange, opNumberNotInRange:
		for _, r := range c.ranges {
			if n >= r[0] && n <= r[1] {
				return true
			}
		}
	}
	return false
}

// isRangeErr reports a number too large or small for float64, which
// ParseFloat rounds to ±Inf or 0: still a number, and compared as that.
func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// hitString reports whether a folded string hits any of the condition's
// (folded) values.
func (c *advancedCond) hitString(s []byte) bool {
	for _, x := range c.strs {
		var h bool
		switch c.op {
		case opStringContains, opStringNotContains:
			h = bytes.Contains(s, x)
		case opStringBeginsWith, opStringNotBeginsWith:
			h = bytes.HasPrefix(s, x)
		case opStringEndsWith, opStringNotEndsWith:
			h = bytes.HasSuffix(s, x)
		case opStringIn, opStringNotIn:
			h = bytes.Equal(s, x)
		}
		if h {
			return true
		}
	}
	return false
}

// appendFold appends s to dst with every rune mapped to the smallest rune
// equal to it under simple case folding, the folding strings.EqualFold
// uses. Two strings are EqualFold exactly when their folds are equal, and
// since UTF-8 matches only at rune boundaries, substring, prefix and suffix
// tests ignoring case become plain ones (bytes.Contains is fast even on a
// megabyte). Bytes that are not UTF-8 are kept as they are.
func appendFold[T string | []byte](dst []byte, s T) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	return dst[:n+foldInto(dst[n:], s)]
}

// foldInto writes the fold of s (see appendFold) to dst, which has room
// for len(s) bytes, and returns how many it wrote. A fold is never longer
// than s: a smaller rune never takes more bytes in UTF-8.
func foldInto[T string | []byte](dst []byte, s T) int {
	w := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst[w] = c
			w++
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && n == 1 {
			dst[w] = c
			w++
		} else {
			w += utf8.EncodeRune(dst[w:], foldRune(r))
		}
		i += n
	}
	return w
}

// foldRune returns the smallest rune in r's simple case folding orbit
// ('K' for 'k' and U+212A KELVIN SIGN).
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

// equalFoldBytes is strings.EqualFold for a member name as bytes.
func equalFoldBytes(b []byte, s string) bool {
	// Most names differ in their first byte.
	if len(b) > 0 && len(s) > 0 && b[0]|s[0] < utf8.RuneSelf && b[0]|0x20 != s[0]|0x20 {
		return false
	}
	for len(b) > 0 && len(s) > 0 {
		br, bn := utf8.DecodeRune(b)
		sr, sn := utf8.DecodeRuneInString(s)
		if !equalFoldRune(br, sr) {
			return false
		}
		b, s = b[bn:], s[sn:]
	}
	return len(b) == 0 && len(s) == 0
}

// forEachElement calls fn with the raw bytes of each element of the JSON
// array doc until fn returns false. Malformed input gives an error, never a
// panic.
func forEachElement(doc []byte, fn func(value []byte) bool) error {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '[' {
		return errMalformedJSON
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return nil
	}
	for {
		end, err := skipValue(doc, i)
		if err != nil {
			return err
		}
		if end == i {
			return errMalformedJSON
		}
		if !fn(doc[i:end]) {
			return nil
		}
		i = skipSpace(doc, end)
		if i >= len(doc) {
			return errMalformedJSON
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case ']':
			return nil
		default:
			return errMalformedJSON
		}
	}
}
