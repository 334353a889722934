package schemas

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseCloudEvent parses one structured-mode CloudEvent
// (application/cloudevents+json) and returns it in canonical form.
//
// It applies CloudEvents 1.0 (core, JSON format) strictly, where the Go SDK
// does not: id, source (a URI-reference), specversion ("1.0") and type are
// required and non-empty; subject, datacontenttype (a media type),
// dataschema (an absolute URI) and time (RFC 3339) are optional but not
// empty; an attribute sent as null is unset. Attribute names are 1 to 20
// lower-case letters and digits; extension values are strings, booleans or
// integers in the int32 range written without fraction or exponent, never
// objects or arrays; string values hold no control characters or Unicode
// noncharacters. partitionkey, if present, is a non-empty string. data and
// data_base64 (standard, padded base64) exclude each other; data may be any
// JSON, whatever the datacontenttype. Duplicate keys at any depth, invalid
// UTF-8 and unpaired surrogates are rejected.
//
// Errors are *ValidationError; FieldError.Field is the attribute's name
// ("specversion") or a path into data ("data.items[2].id").
func ParseCloudEvent(data []byte) (Event, error) {
	events, err := parseCloudEvents(data, cloudEventDoc)
	if err != nil {
		return Event{}, err
	}
	return events[0], nil
}

// ParseCloudEventBatch parses application/cloudevents-batch+json: a JSON
// array of at least one structured-mode CloudEvent, each checked as
// ParseCloudEvent checks one. (The JSON batch format allows an empty
// array; a publish of nothing is an error here.) Fields in errors start
// with the event's index: "[3].specversion".
func ParseCloudEventBatch(data []byte) ([]Event, error) {
	return parseCloudEvents(data, cloudEventBatchDoc)
}

func parseCloudEvents(data []byte, shape docShape) ([]Event, error) {
	raws, errs := walkEvents(data, shape)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	var p problems
	events := make([]Event, 0, len(raws))
	for i := range raws {
		if p.full() {
			break
		}
		if ev, ok := structuredEvent(&p, &raws[i]); ok {
			events = append(events, ev)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return events, nil
}

// structuredEvent applies CloudEvents' rules to one event object.
func structuredEvent(p *problems, raw *rawEvent) (Event, bool) {
	before := len(p.errs)
	attrs := make(map[string]attribute, len(raw.members))
	var data, dataBase64 *rawMember
	for k := range raw.members {
		m := &raw.members[k]
		switch m.key {
		case memberData:
			data = m
		case memberDataBase64:
			if m.tok == nil {
				continue // unset, like a null attribute
			}
			s, ok := m.tok.(string)
			if !ok {
				p.add(m.path, "must be a string of base64-encoded data, not %s", jsonKind(m.tok))
				continue
			}
			if msg := checkBase64(s); msg != "" {
				p.add(m.path, "%s", msg)
				continue
			}
			dataBase64 = m
		default:
			if msg := checkAttributeName(m.key); msg != "" {
				p.add(m.path, "%s", msg)
				continue
			}
			if m.tok == nil {
				continue // null means unset
			}
			if _, ok := m.tok.(string); !ok && isStringAttribute(m.key) {
				p.add(m.path, "must be a string, not %s", jsonKind(m.tok))
				continue
			}
			a, msg := jsonAttribute(m.tok)
			if msg != "" {
				p.add(m.path, "%s", msg)
				continue
			}
			attrs[m.key] = a
		}
	}
	if data != nil && dataBase64 != nil {
		p.add(dataBase64.path, "not allowed together with data: an event carries one or the other")
	}
	ev := checkAttributes(p, attrs, func(name string) string { return fieldPath(raw.path, name) })
	if len(p.errs) > before {
		return Event{}, false
	}
	switch {
	case data != nil:
		ev.JSON = canonical(attrs, memberData, data.value)
	case dataBase64 != nil:
		ev.JSON = canonical(attrs, memberDataBase64, appendString(nil, dataBase64.tok.(string)))
	default:
		ev.JSON = canonical(attrs, "", nil)
	}
	return ev, true
}

// jsonAttribute checks an attribute value's JSON type (not null) and
// returns it, or a message.
func jsonAttribute(tok json.Token) (attribute, string) {
	switch v := tok.(type) {
	case string:
		if msg := checkString(v); msg != "" {
			return attribute{}, msg
		}
		return stringAttribute(v), ""
	case bool:
		return attribute{json: []byte(strconv.FormatBool(v))}, ""
	case json.Number:
		n, ok := parseInteger(v)
		if !ok {
			return attribute{}, "must be an integer from -2147483648 to 2147483647 without fraction or exponent (a CloudEvents Integer); send other numbers as strings"
		}
		return attribute{json: strconv.AppendInt(nil, n, 10)}, ""
	default:
		return attribute{}, "must be a string, a boolean or an integer, not " + jsonKind(tok) + ": attributes cannot hold objects or arrays (put those in data)"
	}
}

// isStringAttribute reports whether an attribute's type is String (or
// another type sent as a JSON string).
func isStringAttribute(name string) bool {
	return isCoreAttribute(name) || name == attrPartitionKey
}

// checkAttributes applies the rules of the CloudEvents attributes that have
// them, and returns the event they describe (without its JSON). Attributes
// for which isStringAttribute holds must be strings.
func checkAttributes(p *problems, attrs map[string]attribute, pathOf func(string) string) Event {
	// str returns a string attribute that is present and, if required, not
	// empty.
	str := func(name string, required bool) (string, bool) {
		a, ok := attrs[name]
		switch {
		case !ok:
			if required {
				p.add(pathOf(name), "required")
			}
			return "", false
		case a.str == "" && required:
			p.add(pathOf(name), "must not be empty")
			return "", false
		case a.str == "":
			p.add(pathOf(name), "must not be empty; leave it out (or send null) if there is none")
			return "", false
		}
		return a.str, true
	}
	var ev Event
	if v, ok := str(attrSpecVersion, true); ok && v != "1.0" {
		p.add(pathOf(attrSpecVersion), `must be "1.0" (sluice accepts CloudEvents 1.0; found %q)`, v)
	}
	ev.ID, _ = str(attrID, true)
	if v, ok := str(attrSource, true); ok {
		if msg := checkURIReference(v); msg != "" {
			p.add(pathOf(attrSource), "%s", msg)
		}
		ev.Source = v
	}
	ev.Type, _ = str(attrType, true)
	ev.Subject, _ = str(attrSubject, false)
	if v, ok := str(attrTime, false); ok {
		t, ok := parseTime(v)
		if !ok {
			p.add(pathOf(attrTime), timeMessage)
		}
		ev.Time = t
	}
	if v, ok := str(attrDataContentType, false); ok {
		if msg := checkMediaType(v); msg != "" {
			p.add(pathOf(attrDataContentType), "%s", msg)
		}
	}
	if v, ok := str(attrDataSchema, false); ok {
		if msg := checkAbsoluteURI(v); msg != "" {
			p.add(pathOf(attrDataSchema), "%s", msg)
		}
	}
	ev.PartitionKey, _ = str(attrPartitionKey, false)
	return ev
}

// checkBase64 returns what is wrong with s as data_base64, or "".
func checkBase64(s string) string {
	const want = "must be base64 (RFC 4648: the standard alphabet, with = padding, no line breaks)"
	// DecodeString skips \r and \n.
	if strings.ContainsAny(s, "\r\n") {
		return want
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(s); err != nil {
		return want
	}
	return ""
}

// ParseCloudEventBinary builds an event from an HTTP binary-mode request:
// ce-* headers and a body whose media type is the Content-Type header.
//
// Header names are case-insensitive; ce-Foo is attribute foo. Each value is
// unquoted (RFC 9110 quoted strings) and percent-decoded once, as the
// CloudEvents HTTP binding requires, and must decode to UTF-8. Every value
// is a string, so extensions are strings; the attributes' rules are
// ParseCloudEvent's. A header sent more than once, and ce-datacontenttype
// (the binding forbids it: Content-Type is the datacontenttype), are
// errors.
//
// An empty body means no data. A body becomes data if the Content-Type is
// JSON (*/json or */*+json) and the body is JSON that ParseCloudEvent would
// accept as data; any other body is kept, byte for byte, as data_base64.
//
// Errors are *ValidationError; FieldError.Field names the header
// ("ce-specversion", "Content-Type").
func ParseCloudEventBinary(h http.Header, body []byte) (Event, error) {
	var p problems
	attrs := make(map[string]attribute)
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := make(map[string]bool)
	for _, name := range names {
		header := strings.ToLower(name)
		attr, ok := strings.CutPrefix(header, "ce-")
		if !ok {
			continue
		}
		values := h[name]
		if seen[attr] || len(values) > 1 {
			p.add(header, "sent more than once")
			delete(attrs, attr)
			continue
		}
		seen[attr] = true
		if len(values) == 0 {
			continue
		}
		if attr == attrDataContentType {
			p.add(header, "not allowed in binary mode: the Content-Type header is the datacontenttype")
			continue
		}
		if msg := checkAttributeName(attr); msg != "" {
			p.add(header, "%s", msg)
			continue
		}
		v, msg := decodeHeaderValue(values[0])
		if msg == "" {
			msg = checkString(v)
		}
		if msg != "" {
			p.add(header, "%s", msg)
			continue
		}
		attrs[attr] = stringAttribute(v)
	}
	ev := checkAttributes(&p, attrs, func(name string) string { return "ce-" + name })

	if ct := h.Values("Content-Type"); len(ct) > 1 {
		p.add("Content-Type", "sent more than once")
	} else if len(ct) == 1 {
		v := strings.Trim(ct[0], " \t")
		msg := checkMediaType(v)
		if msg == "" {
			msg = checkString(v)
		}
		if msg != "" {
			p.add("Content-Type", "%s", msg)
		}
		attrs[attrDataContentType] = stringAttribute(v)
	}
	if err := p.err(); err != nil {
		return Event{}, err
	}
	switch {
	case len(body) == 0:
		ev.JSON = canonical(attrs, "", nil)
	case isJSONMediaType(attrs[attrDataContentType].str) && isEventData(body):
		ev.JSON = canonical(attrs, memberData, body)
	default:
		ev.JSON = canonical(attrs, memberDataBase64, appendString(nil, base64.StdEncoding.EncodeToString(body)))
	}
	return ev, nil
}

// decodeHeaderValue decodes a binary-mode attribute header: first quoted
// strings (for senders of older CloudEvents versions), then one round of
// percent-decoding. It returns the value, or "" and what is wrong.
func decodeHeaderValue(v string) (string, string) {
	v = strings.Trim(v, " \t")
	if strings.IndexByte(v, '"') >= 0 {
		var b strings.Builder
		quoted := false
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"':
				quoted = !quoted
			case c == '\\' && quoted && i+1 < len(v):
				i++
				b.WriteByte(v[i])
			default:
				b.WriteByte(c)
			}
		}
		if quoted {
			return "", `has a quoted string without its closing "`
		}
		v = b.String()
	}
	if strings.IndexByte(v, '%') >= 0 {
		b := make([]byte, 0, len(v))
		for i := 0; i < len(v); i++ {
			if v[i] != '%' {
				b = append(b, v[i])
				continue
			}
			if i+2 >= len(v) || !isHex(v[i+1]) || !isHex(v[i+2]) {
				return "", "has a % that does not start a percent-encoded byte such as %20 (send % itself as %25)"
			}
			b = append(b, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
		}
		v = string(b)
	}
	if !utf8.ValidString(v) {
		return "", "must be UTF-8 once percent-decoded"
	}
	return v, ""
}

// isEventData reports whether body is JSON that ParseCloudEvent accepts as
// an event's data: strict, and nested no deeper than data in a single
// structured event may be.
func isEventData(body []byte) bool {
	if i, _ := encodingProblem(body); i >= 0 {
		return false
	}
	w := newWalker(body)
	w.maxDepth = maxEventDepth
	w.rawNumbers = true
	tok, err := w.dec.Token()
	if err != nil {
		return false
	}
	if err := w.any(tok, "", 2); err != nil || len(w.errs) > 0 {
		return false
	}
	_, err = w.dec.Token()
	return errors.Is(err, io.EOF)
}
