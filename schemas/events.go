package schemas

// Events. Whatever a publisher sends — a structured CloudEvent, a batch, an
// HTTP binary-mode CloudEvent or Event Grid schema events — sluice stores it
// as one canonical CloudEvents 1.0 JSON object (Event.JSON) and renders it
// back in the Event Grid schema for subscriptions that want that
// (ToEventGrid).
//
// Parsing is two passes. The first (walkEvents, on decode.go's walker) is
// about JSON itself: syntax, invalid UTF-8 and unpaired surrogates,
// duplicate keys at any depth, nesting; it splits the document into events
// and their members, keeping each value's bytes as sent. If it finds
// anything, only its problems are reported. The second applies the rules of
// CloudEvents or Event Grid to each event's members and writes the
// canonical JSON. Event data is never decoded: its bytes are kept (only
// whitespace outside strings is removed), so 12345678901234567890 and 1.10
// stay as they were sent.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one event in sluice's canonical form: a CloudEvents 1.0 JSON
// object (structured mode), compact, one line, ready to store in the log.
type Event struct {
	// JSON is the canonical CloudEvent: specversion, id, source, type,
	// subject, time, datacontenttype, dataschema, then the extension
	// attributes sorted by name, then data or data_base64. String attribute
	// values are re-encoded (escapes only where JSON needs them); data keeps
	// the bytes it was sent with, minus insignificant whitespace. Attributes
	// sent as null are unset, so they are left out.
	JSON                      []byte
	ID, Source, Type, Subject string
	// Time is the time attribute in UTC, or zero if the event had none.
	Time time.Time
	// PartitionKey is the partitioning extension's partitionkey, or "".
	PartitionKey string
}

const (
	// maxEventDepth bounds nesting in an event, counting the event object
	// as 1 (in batches too) and its members' values as 2: data holds up to
	// 63 levels of arrays and objects, itself included.
	maxEventDepth = 64
	// maxAttributeNameLength is CloudEvents' recommended limit, which sluice
	// enforces.
	maxAttributeNameLength = 20
)

// Attribute names with a meaning to sluice.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrSubject         = "subject"
	attrTime            = "time"
	attrDataContentType = "datacontenttype"
	attrDataSchema      = "dataschema"
	attrPartitionKey    = "partitionkey" // CloudEvents partitioning extension
	// attrDataVersion and attrEventGridTime carry what CloudEvents has no
	// place for when an event arrives in the Event Grid schema: its
	// dataVersion, and its eventTime as sent when that was not RFC 3339
	// (a +0000 offset) and time holds the repaired form.
	attrDataVersion   = "dataversion"
	attrEventGridTime = "egeventtime"

	memberData       = "data"
	memberDataBase64 = "data_base64"
)

// coreAttributes are the CloudEvents 1.0 context attributes, in canonical order.
var coreAttributes = []string{
	attrSpecVersion, attrID, attrSource, attrType, attrSubject, attrTime,
	attrDataContentType, attrDataSchema,
}

// rawMember is one member of an event object as sent.
type rawMember struct {
	key   string
	path  string     // JSON path of the member, e.g. "[3].time"
	tok   json.Token // the value's first token: the decoded scalar, or '{' or '['
	value []byte     // the value's bytes as sent
	start int        // offset where the member begins (before its key)
	at    int        // offset of the value
}

// rawEvent is one event object of a document.
type rawEvent struct {
	path       string // "" for a single event, "[i]" in a batch
	start, end int    // offsets of the object in the document
	members    []rawMember
}

// docShape says what a document must be, and how to say so.
type docShape struct {
	array   bool   // an array of event objects, else one event object
	want    string // the document, as "must be …" needs it
	hint    string // appended to the message when the document has the other shape
	element string // an element of the array, as "must be …" needs it
}

var (
	cloudEventDoc = docShape{
		want: "a JSON object (one CloudEvent)",
		hint: "; send a batch as application/cloudevents-batch+json",
	}
	cloudEventBatchDoc = docShape{
		array:   true,
		want:    "a JSON array of CloudEvents",
		hint:    "; send a single event as application/cloudevents+json",
		element: "a JSON object (a CloudEvent)",
	}
	eventGridDoc = docShape{
		array:   true,
		want:    "a JSON array of Event Grid events",
		hint:    "; send even a single event in an array: [{…}]",
		element: "a JSON object (an Event Grid event)",
	}
)

// walkEvents is the first pass: it checks data as JSON, strictly, and splits
// it into event objects of the given shape. Elements of a batch that are
// not objects are reported and left out, so the events' paths need not
// follow one another.
func walkEvents(data []byte, shape docShape) ([]rawEvent, []FieldError) {
	w := newWalker(data)
	w.maxDepth = maxEventDepth
	w.rawNumbers = true
	ew := &eventWalker{w: w, data: data}
	_ = ew.document(shape) // its problems are in w.errs
	if i, msg := encodingProblem(data); i >= 0 && len(w.errs) < maxDecodeErrors {
		w.errs = append(w.errs, FieldError{Field: ew.locate(i), Message: msg})
	}
	return ew.events, w.errs
}

type eventWalker struct {
	w      *walker
	data   []byte
	events []rawEvent
}

func (ew *eventWalker) document(shape docShape) error {
	w := ew.w
	tok, err := w.dec.Token()
	if errors.Is(err, io.EOF) {
		return w.fatal("", "empty body; expected "+shape.want)
	}
	if err != nil {
		return w.syntax("", err)
	}
	wrong := func() error {
		msg := fmt.Sprintf("must be %s, not %s", shape.want, jsonKind(tok))
		if tok == json.Delim('{') || tok == json.Delim('[') {
			msg += shape.hint // the other shape
		}
		return w.fatal("", msg)
	}
	if !shape.array {
		if tok != json.Delim('{') {
			return wrong()
		}
		if err := ew.object("", 1); err != nil {
			return err
		}
	} else {
		if tok != json.Delim('[') {
			return wrong()
		}
		n := 0
		for ; w.dec.More(); n++ {
			p := indexPath("", n)
			el, err := w.next(p)
			if err != nil {
				return err
			}
			// Depths count from the event object, so that data may nest
			// as deep in a batch as in a single event.
			if el != json.Delim('{') {
				err = w.mismatch(el, shape.element, p, 1)
			} else {
				err = ew.object(p, 1)
			}
			if err != nil {
				return err
			}
		}
		if _, err := w.next(""); err != nil {
			return err
		}
		if n == 0 {
			return w.fatal("", "must contain at least one event")
		}
	}
	if _, err := w.dec.Token(); !errors.Is(err, io.EOF) {
		what := "object"
		if shape.array {
			what = "array"
		}
		return w.fatal("", fmt.Sprintf("unexpected data after the JSON %s at byte %d", what, w.dec.InputOffset()))
	}
	return nil
}

// object walks the members of an event object whose '{' has been read.
func (ew *eventWalker) object(path string, depth int) error {
	w := ew.w
	ev := rawEvent{path: path, start: int(w.dec.InputOffset()) - 1}
	seen := make(map[string]bool)
	for w.dec.More() {
		start := int(w.dec.InputOffset())
		key, p, err := w.key(path)
		if err != nil {
			return err
		}
		keyEnd := int(w.dec.InputOffset())
		var tok json.Token
		if key == memberData {
			// Event data is opaque to sluice and kept byte for byte: one
			// scanner pass checks its syntax and checkData its keys and
			// depth, far faster than walking it token by token.
			// (encodingProblem checks the whole body's UTF-8.)
			var raw json.RawMessage
			if err := w.dec.Decode(&raw); err != nil {
				return w.syntax(p, err)
			}
			if field, msg, ok := checkData(raw, p, depth+1, w.maxDepth); !ok {
				if err := w.add(field, msg); err != nil {
					return err
				}
			}
			if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] != 'n' {
				tok = json.Delim(t[0]) // anything but nil: only null is tested for
			}
		} else {
			var err error
			if tok, err = w.next(p); err != nil {
				return err
			}
			if err := w.any(tok, p, depth+1); err != nil {
				return err
			}
		}
		if seen[key] {
			if err := w.add(p, "duplicate key"); err != nil {
				return err
			}
		}
		seen[key] = true
		// Between the key and the end of the value: space, a colon, space.
		seg := ew.data[keyEnd:w.dec.InputOffset()]
		value := bytes.TrimLeft(bytes.TrimLeft(seg, " \t\r\n")[1:], " \t\r\n")
		at := keyEnd + len(seg) - len(value)
		ev.members = append(ev.members, rawMember{key: key, path: p, tok: tok, value: value, start: start, at: at})
	}
	if _, err := w.next(path); err != nil {
		return err
	}
	ev.end = int(w.dec.InputOffset())
	ew.events = append(ew.events, ev)
	return nil
}

// locate names the member holding byte offset i, as far as the walk got:
// the member's path if i is in its value, else the event's.
func (ew *eventWalker) locate(i int) string {
	for _, ev := range ew.events {
		if i < ev.start || i >= ev.end {
			continue
		}
		for k := len(ev.members) - 1; k >= 0; k-- {
			m := ev.members[k]
			if m.start > i {
				continue
			}
			if i >= m.at {
				return m.path
			}
			break
		}
		return ev.path
	}
	return ""
}

// problems collects FieldErrors across the events of a document, up to
// maxDecodeErrors.
type problems struct {
	checker
}

func (p *problems) full() bool { return len(p.errs) >= maxDecodeErrors }

func (p *problems) add(field, format string, args ...any) {
	if !p.full() {
		p.checker.add(field, format, args...)
	}
}

// checkAttributeName returns what is wrong with a CloudEvents attribute
// name, or "".
func checkAttributeName(name string) string {
	ok := name != "" && len(name) <= maxAttributeNameLength
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	switch {
	case name == memberData:
		return `"data" is reserved: it holds the event data, not an attribute`
	case ok:
		return ""
	}
	lower := strings.ToLower(name)
	for _, core := range coreAttributes {
		if lower == core {
			return fmt.Sprintf("unknown attribute; did you mean %q? (attribute names are case-sensitive)", core)
		}
	}
	if lower == memberDataBase64 || lower == memberData {
		return fmt.Sprintf("unknown attribute; did you mean %q? (names are case-sensitive)", lower)
	}
	return fmt.Sprintf("not a valid attribute name: CloudEvents attribute names are 1 to %d lower-case letters (a-z) and digits (0-9)", maxAttributeNameLength)
}

// checkString returns what is wrong with a CloudEvents String value, or "":
// it may not hold control characters (U+0000–U+001F, U+007F–U+009F) or
// Unicode noncharacters. (Unpaired surrogates never get this far.)
func checkString(s string) string {
	for i, r := range s {
		switch {
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Sprintf("must not contain control characters (found U+%04X at byte %d)", r, i)
		case r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe:
			return fmt.Sprintf("must not contain Unicode noncharacters (found U+%04X at byte %d)", r, i)
		}
	}
	return ""
}

// checkURIReference returns what is wrong with s as an RFC 3986
// URI-reference, or "".
func checkURIReference(s string) string {
	if msg := checkURIChars(s, "URI-reference"); msg != "" {
		return msg
	}
	if _, err := url.Parse(s); err != nil {
		return fmt.Sprintf("must be a URI-reference (RFC 3986), such as /orders or https://example.com/orders: %v", urlErr(err))
	}
	return ""
}

// checkAbsoluteURI returns what is wrong with s as an absolute URI, or "".
// CloudEvents' URI type excludes fragments (RFC 3986 section 4.3); sluice
// accepts them, as JSON Schema references often have one.
func checkAbsoluteURI(s string) string {
	const want = "must be an absolute URI (RFC 3986), such as https://example.com/schemas/order.json"
	if msg := checkURIChars(s, "URI"); msg != "" {
		return msg
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%s: %v", want, urlErr(err))
	}
	if u.Scheme == "" {
		return want + " (found no scheme)"
	}
	return ""
}

// checkURIChars checks that s has only the characters RFC 3986 allows, and
// that each % starts an escape; what names the kind of URI for messages.
func checkURIChars(s, what string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fmt.Sprintf("must be a %s (RFC 3986): %% at byte %d does not start an escape such as %%20", what, i)
			}
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Sprintf("must be a %s (RFC 3986): %q at byte %d must be percent-encoded", what, r, i)
		}
	}
	return ""
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// checkMediaType returns what is wrong with s as an RFC 2046 media type, or "".
func checkMediaType(s string) string {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return `must be a media type (RFC 2046) such as "application/json" or "text/plain; charset=utf-8"`
	}
	return ""
}

// isJSONMediaType reports whether media type s declares JSON data: */json
// or */*+json, parameters aside.
func isJSONMediaType(s string) bool {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return false
	}
	_, sub, ok := strings.Cut(mt, "/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

// timeMessage is the message for a time that does not parse.
const timeMessage = "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"

// eventGridTime matches the eventTime offsets without a colon (+0000) that
// Microsoft's samples send.
var eventGridTime = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?[+-][0-9]{4}$`)

// parseEventGridTime parses an Event Grid eventTime: RFC 3339, or with an
// offset of four digits and no colon. It returns the time in UTC and its
// RFC 3339 form (s itself, or s with the colon added).
func parseEventGridTime(s string) (time.Time, string, bool) {
	if eventGridTime.MatchString(s) {
		s = s[:len(s)-2] + ":" + s[len(s)-2:]
	}
	t, ok := parseTime(s)
	return t, s, ok
}

// parseInteger parses a CloudEvents Integer from a JSON number: digits with
// an optional minus sign, in the int32 range.
func parseInteger(n json.Number) (int64, bool) {
	s := string(n)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 32)
	return v, err == nil
}

// appendString appends s as a JSON string, escaping only what JSON requires
// (s is valid UTF-8).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends the JSON value raw without insignificant
// whitespace; raw has passed the walk.
func appendCompact(b []byte, raw []byte) []byte {
	if bytes.IndexAny(raw, " \t\r\n") < 0 {
		return append(b, raw...)
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		panic("schemas: compact a checked JSON value: " + err.Error())
	}
	return buf.Bytes()
}

// attribute is one attribute of an event being checked: its canonical JSON
// and, for strings, its value.
type attribute struct {
	json []byte
	str  string
}

// canonical writes an event's canonical JSON from checked attributes (null
// ones already removed) and its data member, if any (a JSON value as sent,
// data or data_base64).
func canonical(attrs map[string]attribute, dataKey string, data []byte) []byte {
	size := 16 + len(data)
	for name, a := range attrs {
		size += len(name) + len(a.json) + 4
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	member := func(name string, value []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = append(b, value...)
	}
	for _, name := range coreAttributes {
		if a, ok := attrs[name]; ok {
			member(name, a.json)
		}
	}
	var ext []string
	for name := range attrs {
		if !isCoreAttribute(name) {
			ext = append(ext, name)
		}
	}
	sort.Strings(ext)
	for _, name := range ext {
		member(name, attrs[name].json)
	}
	if dataKey != "" {
		member(dataKey, nil)
		b = appendCompact(b, data)
	}
	return append(b, '}')
}

func isCoreAttribute(name string) bool {
	return slices.Contains(coreAttributes, name)
}

func stringAttribute(s string) attribute {
	return attribute{json: appendString(nil, s), str: s}
}

// StampTime returns e with its time attribute set to t if it has none, and
// e itself if it has one. Ingest stamps the publish time this way, so that
// every stored event has a time: Event Grid requires eventTime, and
// ToEventGrid fails without one. e.JSON must be canonical.
func StampTime(e Event, t time.Time) (Event, error) {
	if !e.Time.IsZero() {
		return e, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.JSON, &m); err != nil {
		return Event{}, fmt.Errorf("schemas: stamp time: not a CloudEvent: %w", err)
	}
	if _, ok := m[attrTime]; ok {
		return Event{}, errors.New("schemas: stamp time: the event has a time attribute but Event.Time is zero")
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return Event{}, fmt.Errorf("schemas: stamp time: %v is outside the years 0000 to 9999", t)
	}
	attrs := make(map[string]attribute, len(m)+1)
	dataKey, data := "", []byte(nil)
	for name, raw := range m {
		if name == memberData || name == memberDataBase64 {
			dataKey, data = name, raw
			continue
		}
		attrs[name] = attribute{json: raw}
	}
	attrs[attrTime] = stringAttribute(t.Format(time.RFC3339Nano))
	e.JSON = canonical(attrs, dataKey, data)
	e.Time = t
	return e, nil
}
