package schemas

import (
	"fmt"
	"reflect"
	"strings"
)

// eventGridEvent is an event in the Event Grid schema. Only its field names
// are used: for unknown-field messages, and as the order ToEventGrid writes.
type eventGridEvent struct {
	Topic           string `json:"topic"`
	Subject         string `json:"subject"`
	EventType       string `json:"eventType"`
	EventTime       string `json:"eventTime"`
	ID              string `json:"id"`
	Data            any    `json:"data"`
	DataVersion     string `json:"dataVersion"`
	MetadataVersion string `json:"metadataVersion"`
}

var eventGridFields = jsonFields(reflect.TypeFor[eventGridEvent]())

// ParseEventGridEvents parses an Event Grid schema publish body and
// converts each event to a canonical CloudEvent (see ToEventGrid for the
// way back). topic is the path of the topic published to, such as
// "/topics/orders": it becomes each event's source, as Event Grid stamps its
// topic field.
//
// The body must be a JSON array of at least one event, as Event Grid
// requires; a bare object is an error that says to wrap it. Each event needs
// id, eventType (non-empty strings), subject (a string, possibly empty) and
// eventTime: RFC 3339, or with an offset without a colon such as +0000,
// which Microsoft's samples send (time gets the RFC 3339 form). data is any
// JSON and optional; dataVersion is an optional string. metadataVersion, if
// present, must be "1". topic may be left out (or null or empty) or equal
// topic, ignoring case — Event Grid rejects any other value, and so does
// sluice. Other fields are errors, with a hint when only their case is
// wrong: Event Grid's documentation does not say what it does with them,
// and keeping them would mean inventing attribute names for them. Strings
// follow CloudEvents' rules (no control characters), since they become
// attributes; JSON is checked as strictly as ParseCloudEvent checks it.
//
// Errors are *ValidationError; fields are named by index and Event Grid
// field name: "[0].eventTime".
func ParseEventGridEvents(data []byte, topic string) ([]Event, error) {
	if topic == "" || checkURIReference(topic) != "" || checkString(topic) != "" {
		return nil, fmt.Errorf("schemas: topic path %q is not a URI-reference", topic)
	}
	raws, errs := walkEvents(data, eventGridDoc)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	var p problems
	events := make([]Event, 0, len(raws))
	for i := range raws {
		if p.full() {
			break
		}
		if ev, ok := eventGridToCloudEvent(&p, &raws[i], topic); ok {
			events = append(events, ev)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return events, nil
}

// eventGridToCloudEvent applies Event Grid's rules to one event object and
// converts it.
func eventGridToCloudEvent(p *problems, raw *rawEvent, topic string) (Event, bool) {
	before := len(p.errs)
	fields := make(map[string]*rawMember, len(raw.members))
	for k := range raw.members {
		m := &raw.members[k]
		if _, known := eventGridFields.types[m.key]; !known {
			p.add(m.path, "%s", eventGridFields.unknown(m.key))
			continue
		}
		fields[m.key] = m
	}
	// str returns a field that is present, not null and a string.
	str := func(name string, required, nonEmpty bool) (string, bool) {
		m := fields[name]
		if m == nil || m.tok == nil {
			if required {
				p.add(fieldPath(raw.path, name), "required")
			}
			return "", false
		}
		s, ok := m.tok.(string)
		switch {
		case !ok:
			p.add(m.path, "must be a string, not %s", jsonKind(m.tok))
		case s == "" && nonEmpty:
			p.add(m.path, "must not be empty")
		default:
			if msg := checkString(s); msg != "" {
				p.add(m.path, "%s", msg)
				return "", false
			}
			return s, true
		}
		return "", false
	}
	var eg eventGridInput
	eg.id, _ = str("id", true, true)
	eg.subject, _ = str("subject", true, false)
	eg.eventType, _ = str("eventType", true, true)
	if s, ok := str("eventTime", true, false); ok {
		t, rfc, ok := parseEventGridTime(s)
		if !ok {
			p.add(fieldPath(raw.path, "eventTime"), "%s (an offset without a colon, such as +0000, is accepted too)", timeMessage)
		}
		eg.eventTime, eg.time, eg.rfc3339 = s, t, rfc
	}
	eg.dataVersion, eg.hasDataVersion = str("dataVersion", false, false)
	if v, ok := str("metadataVersion", false, false); ok && v != "1" {
		p.add(fieldPath(raw.path, "metadataVersion"), `must be "1" if present (found %q)`, v)
	}
	if v, ok := str("topic", false, false); ok && v != "" && !strings.EqualFold(v, topic) {
		p.add(fieldPath(raw.path, "topic"), "must be left out or %q: Event Grid sets it to the topic's path (found %q)", topic, v)
	}
	if m := fields["data"]; m != nil {
		eg.data = m.value
	}
	if len(p.errs) > before {
		return Event{}, false
	}
	return eg.cloudEvent(topic), true
}
