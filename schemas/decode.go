package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeTopic decodes a topic from an API request body. It is strict where
// encoding/json is lax: it rejects invalid UTF-8 (and \u escapes of unpaired
// UTF-16 surrogates), duplicate keys at any depth, unknown fields (names
// match json tags case-sensitively, so "Name" is unknown), JSON types that
// do not fit a field, and anything after the object.
//
// Output-only fields (etag, properties.endpoint, properties.provisioningState,
// properties.createdAt) are accepted, so a client can GET, edit and PUT back,
// and are dropped: the decoded topic has them empty. Concurrency control uses
// the If-Match header, not the body's etag.
//
// Errors are *ValidationError, each FieldError naming the JSON path from the
// document root (e.g. "properties.partitions"); the path is empty for
// problems with the document as a whole. Decoding continues past unknown
// fields, duplicates and type errors to report up to 20 of them, and stops
// at the first syntax error.
//
// DecodeTopic neither applies defaults nor validates values; see ApplyDefaults
// and Validate. Callers bound the size of data.
func DecodeTopic(data []byte) (Topic, error) {
	var t Topic
	if err := decodeStrict(data, &t); err != nil {
		return Topic{}, err
	}
	t.Version = ""
	t.Properties.Endpoint = ""
	t.Properties.ProvisioningState = ""
	t.Properties.CreatedAt = nil
	return t, nil
}

// DecodeSubscription decodes an event subscription from an API request body,
// as strictly as DecodeTopic. Output-only fields (topic, etag,
// properties.provisioningState) are accepted and dropped. Empty arrays decode
// as nil slices, the same as absent ones, and expirationTimeUtc in UTC.
//
// Advanced filter operands (value, values) decode as encoding/json decodes
// into any: numbers as float64, and a number a float64 cannot hold (1e400)
// is an error. Validate requires numbers to be float64, so the filter
// package can rely on that.
func DecodeSubscription(data []byte) (Subscription, error) {
	var s Subscription
	if err := decodeStrict(data, &s); err != nil {
		return Subscription{}, err
	}
	s.Topic = ""
	s.Version = ""
	s.Properties.ProvisioningState = ""
	s.Properties.ProvisioningMessage = ""
	s.Properties.ExpirationTimeUTC = utc(s.Properties.ExpirationTimeUTC)
	s.normalize()
	return s, nil
}

// normalize replaces empty slices with nil so that a decoded subscription
// equals the one its own encoding decodes to (omitempty drops empty slices).
func (s *Subscription) normalize() {
	p := &s.Properties
	if len(p.Labels) == 0 {
		p.Labels = nil
	}
	if len(p.Destination.Properties.DeliveryAttributeMappings) == 0 {
		p.Destination.Properties.DeliveryAttributeMappings = nil
	}
	if f := p.Filter; f != nil {
		if len(f.IncludedEventTypes) == 0 {
			f.IncludedEventTypes = nil
		}
		if len(f.AdvancedFilters) == 0 {
			f.AdvancedFilters = nil
		}
		for i := range f.AdvancedFilters {
			if len(f.AdvancedFilters[i].Values) == 0 {
				f.AdvancedFilters[i].Values = nil
			}
		}
	}
}

const (
	// maxDecodeDepth bounds nesting; the deepest resource path,
	// properties.filter.advancedFilters[i].values[j][k], is 7 deep.
	maxDecodeDepth = 32
	// maxDecodeErrors bounds how many problems one error reports.
	maxDecodeErrors = 20
)

// errStop ends a walk: after a syntax error, or with enough errors to report.
var errStop = errors.New("stop decoding")

// decodeStrict checks data against the type of v (a pointer to a struct)
// and, if it passes, unmarshals it into v.
func decodeStrict(data []byte, v any) error {
	if _, msg := encodingProblem(data); msg != "" {
		return &ValidationError{Errors: []FieldError{{Message: msg}}}
	}
	w := newWalker(data)
	_ = w.document(reflect.TypeOf(v).Elem()) // its problems are in w.errs
	if len(w.errs) > 0 {
		return &ValidationError{Errors: w.errs}
	}
	// The walk accepted the document, so this only fills in v.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ValidationError{Errors: []FieldError{{Message: "invalid JSON: " + err.Error()}}}
	}
	return nil
}

// encodingProblem finds what encoding/json would silently repair: invalid
// UTF-8 and \u escapes of unpaired UTF-16 surrogates (which it turns into
// U+FFFD). It returns the offset of the first and a message, or -1 and "".
func encodingProblem(data []byte) (int, string) {
	if !utf8.Valid(data) {
		i := invalidUTF8At(data)
		return i, fmt.Sprintf("invalid UTF-8 at byte %d", i)
	}
	if i := loneSurrogateAt(data); i >= 0 {
		return i, fmt.Sprintf("invalid JSON string at byte %d: unpaired UTF-16 surrogate %s", i, data[i:i+6])
	}
	return -1, ""
}

// walker checks a JSON document token by token against a Go type: field
// names against json tags (exactly), JSON types against Go kinds, and
// duplicate keys everywhere. Events (events.go) use its free-form half,
// any, on their own walk.
type walker struct {
	dec  *json.Decoder
	errs []FieldError
	// maxDepth bounds nesting; 0 means maxDecodeDepth.
	maxDepth int
	// rawNumbers accepts every JSON number in free-form values: for callers
	// that keep the text of numbers (event data), not a float64.
	rawNumbers bool
}

// newWalker returns a walker over data that reads numbers as json.Number.
func newWalker(data []byte) *walker {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return &walker{dec: dec}
}

// tooDeep reports whether depth is beyond the walker's nesting bound, and
// records the problem if so.
func (w *walker) tooDeep(path string, depth int) bool {
	limit := w.maxDepth
	if limit == 0 {
		limit = maxDecodeDepth
	}
	if depth <= limit {
		return false
	}
	w.errs = append(w.errs, FieldError{Field: path, Message: fmt.Sprintf("nested more than %d levels deep", limit)})
	return true
}

func (w *walker) document(t reflect.Type) error {
	tok, err := w.dec.Token()
	if errors.Is(err, io.EOF) {
		return w.fatal("", "empty document; expected a JSON object")
	}
	if err != nil {
		return w.syntax("", err)
	}
	if tok != json.Delim('{') {
		if err := w.mismatch(tok, "a JSON object", "", 0); err != nil {
			return err
		}
	} else if err := w.object(t, "", 1); err != nil {
		return err
	}
	if _, err := w.dec.Token(); !errors.Is(err, io.EOF) {
		return w.fatal("", fmt.Sprintf("unexpected data after the JSON object at byte %d", w.dec.InputOffset()))
	}
	return nil
}

// add records a problem; it returns errStop once there are enough.
func (w *walker) add(path, msg string) error {
	w.errs = append(w.errs, FieldError{Field: path, Message: msg})
	if len(w.errs) >= maxDecodeErrors {
		return errStop
	}
	return nil
}

func (w *walker) fatal(path, msg string) error {
	w.errs = append(w.errs, FieldError{Field: path, Message: msg})
	return errStop
}

func (w *walker) syntax(path string, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return w.fatal(path, fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return w.fatal(path, "invalid JSON: unexpected end of input")
	default:
		return w.fatal(path, "invalid JSON: "+err.Error())
	}
}

func (w *walker) next(path string) (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.syntax(path, err)
	}
	return tok, nil
}

var timeType = reflect.TypeFor[time.Time]()

// value checks the value starting with tok against t.
func (w *walker) value(tok json.Token, t reflect.Type, path string, depth int) error {
	if w.tooDeep(path, depth) {
		return errStop
	}
	if t == timeType {
		s, ok := tok.(string)
		if !ok {
			return w.mismatch(tok, "a string (an RFC 3339 time)", path, depth)
		}
		if _, ok := parseTime(s); !ok {
			return w.add(path, "must be an RFC 3339 time from 0000 to 9999 UTC, such as 2030-01-02T15:04:05Z")
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if tok == nil {
			return nil
		}
		return w.value(tok, t.Elem(), path, depth)
	case reflect.Interface:
		return w.any(tok, path, depth)
	case reflect.Struct:
		if tok != json.Delim('{') {
			return w.mismatch(tok, "an object", path, depth)
		}
		return w.object(t, path, depth+1)
	case reflect.Slice:
		if tok == nil {
			return nil
		}
		if tok != json.Delim('[') {
			return w.mismatch(tok, "an array", path, depth)
		}
		for i := 0; w.dec.More(); i++ {
			p := indexPath(path, i)
			el, err := w.next(p)
			if err != nil {
				return err
			}
			if err := w.value(el, t.Elem(), p, depth+1); err != nil {
				return err
			}
		}
		_, err := w.next(path)
		return err
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return w.mismatch(tok, "a string", path, depth)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return w.mismatch(tok, "an integer", path, depth)
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return w.add(path, fmt.Sprintf("integer %s is out of range", n))
			}
			return w.add(path, fmt.Sprintf("must be an integer, not %s", n))
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return w.mismatch(tok, "a boolean", path, depth)
		}
	default:
		panic(fmt.Sprintf("schemas: decoding into %v is not supported", t))
	}
	return nil
}

// object checks the members of an object whose '{' has been read against
// the json-tagged fields of struct type t.
func (w *walker) object(t reflect.Type, path string, depth int) error {
	fields := jsonFields(t)
	seen := make(map[string]bool)
	for w.dec.More() {
		key, p, err := w.key(path)
		if err != nil {
			return err
		}
		tok, err := w.next(p)
		if err != nil {
			return err
		}
		ft, known := fields.types[key]
		dup := seen[key]
		seen[key] = true
		switch {
		case dup:
			err = w.add(p, "duplicate key")
		case !known:
			err = w.add(p, fields.unknown(key))
		default:
			err = w.value(tok, ft, p, depth)
		}
		if err != nil {
			return err
		}
		if dup || !known {
			if err := w.any(tok, p, depth); err != nil {
				return err
			}
		}
	}
	_, err := w.next(path)
	return err
}

func (w *walker) key(path string) (string, string, error) {
	tok, err := w.next(path)
	if err != nil {
		return "", "", err
	}
	key, ok := tok.(string)
	if !ok { // json.Decoder reports non-string keys as syntax errors
		return "", "", w.fatal(path, "invalid JSON: object key is not a string")
	}
	return key, fieldPath(path, key), nil
}

// any checks a value of any type: duplicate keys, nesting, and that numbers
// fit a float64 (what encoding/json decodes them into).
func (w *walker) any(tok json.Token, path string, depth int) error {
	if w.tooDeep(path, depth) {
		return errStop
	}
	switch v := tok.(type) {
	case json.Number:
		if w.rawNumbers {
			break
		}
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			return w.add(path, fmt.Sprintf("number %s is out of the range of a 64-bit float", v))
		}
	case json.Delim:
		switch v {
		case '{':
			seen := make(map[string]bool)
			for w.dec.More() {
				key, p, err := w.key(path)
				if err != nil {
					return err
				}
				el, err := w.next(p)
				if err != nil {
					return err
				}
				if seen[key] {
					if err := w.add(p, "duplicate key"); err != nil {
						return err
					}
				}
				seen[key] = true
				if err := w.any(el, p, depth+1); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; w.dec.More(); i++ {
				p := indexPath(path, i)
				el, err := w.next(p)
				if err != nil {
					return err
				}
				if err := w.any(el, p, depth+1); err != nil {
					return err
				}
			}
		}
		_, err := w.next(path) // the closing delimiter
		return err
	}
	return nil
}

// mismatch reports a value of the wrong JSON type and skips over it.
func (w *walker) mismatch(tok json.Token, want, path string, depth int) error {
	if err := w.add(path, fmt.Sprintf("must be %s, not %s", want, jsonKind(tok))); err != nil {
		return err
	}
	return w.any(tok, path, depth)
}

func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return fmt.Sprintf("%T", tok)
}

// fieldPath appends an object member to a JSON path: a.b for names that
// read as identifiers, a["x.y"] for others.
func fieldPath(path, key string) string {
	if !isIdentifier(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// structFields are the JSON members of a struct type.
type structFields struct {
	names []string // in declaration order
	types map[string]reflect.Type
}

// unknown explains an unknown member name.
func (f *structFields) unknown(key string) string {
	for _, name := range f.names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("unknown field; did you mean %q? (names are case-sensitive)", name)
		}
	}
	return "unknown field; expected one of " + strings.Join(f.names, ", ")
}

var fieldCache sync.Map // reflect.Type → *structFields

func jsonFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{types: make(map[string]reflect.Type)}
	for sf := range t.Fields() {
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.names = append(f.names, name)
		f.types[name] = sf.Type
	}
	fieldCache.Store(t, f)
	return f
}

// rfc3339 is the syntax of RFC 3339's date-time as time.Time encodes it.
// time.Time's UnmarshalJSON alone would accept some malformed times, such
// as a one-digit hour or an offset of +24:00.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$`)

// parseTime parses an RFC 3339 time that is within the years time.Time
// can encode once converted to UTC, as decoding converts it.
func parseTime(s string) (time.Time, bool) {
	if !rfc3339.MatchString(s) {
		return time.Time{}, false
	}
	var t time.Time
	quoted, _ := json.Marshal(s)
	if t.UnmarshalJSON(quoted) != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// utc converts a decoded time to UTC, so that equal instants decode equal.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// invalidUTF8At returns the offset of the first byte of data that is not
// part of valid UTF-8, or -1.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// loneSurrogateAt returns the offset of the first \u escape of a UTF-16
// surrogate that is not half of a pair, or -1. encoding/json would turn it
// into U+FFFD. Backslashes appear only inside strings in valid JSON, so a
// plain scan of escapes suffices (invalid JSON fails later anyway).
func loneSurrogateAt(data []byte) int {
	for i := 0; i+1 < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := unicodeEscape(data[i:])
		if !ok {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xDC00 {
				return i
			}
			low, ok := unicodeEscape(data[i+6:])
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return i
			}
			i += 6
		}
		i += 5
	}
	return -1
}

// unicodeEscape decodes a \uXXXX escape at the start of b.
func unicodeEscape(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
