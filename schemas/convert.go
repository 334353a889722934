package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// eventGridInput is a checked Event Grid schema event.
type eventGridInput struct {
	id, subject, eventType string
	eventTime              string    // as sent
	rfc3339                string    // eventTime in RFC 3339 (with a colon in the offset)
	time                   time.Time // in UTC
	dataVersion            string
	hasDataVersion         bool
	data                   []byte // as sent; nil if absent
}

// cloudEvent maps an Event Grid event to a canonical CloudEvent the way
// Event Grid maps its schema to CloudEvents, keeping what CloudEvents has no
// place for in extension attributes, so that ToEventGrid gives the event
// back:
//
//	id          → id
//	(the topic) → source
//	subject     → subject, left out if empty (CloudEvents requires non-empty)
//	eventType   → type
//	eventTime   → time in RFC 3339, and egeventtime as sent if that differs
//	data        → data as sent, with datacontenttype application/json
//	dataVersion → dataversion, if sent
//
// metadataVersion is always "1" and topic is the one published to, so
// neither needs keeping.
func (eg *eventGridInput) cloudEvent(topic string) Event {
	attrs := map[string]attribute{
		attrSpecVersion: stringAttribute("1.0"),
		attrID:          stringAttribute(eg.id),
		attrSource:      stringAttribute(topic),
		attrType:        stringAttribute(eg.eventType),
		attrTime:        stringAttribute(eg.rfc3339),
	}
	if eg.subject != "" {
		attrs[attrSubject] = stringAttribute(eg.subject)
	}
	if eg.rfc3339 != eg.eventTime {
		attrs[attrEventGridTime] = stringAttribute(eg.eventTime)
	}
	if eg.hasDataVersion {
		attrs[attrDataVersion] = stringAttribute(eg.dataVersion)
	}
	dataKey := ""
	if eg.data != nil {
		attrs[attrDataContentType] = stringAttribute("application/json")
		dataKey = memberData
	}
	return Event{
		JSON:    canonical(attrs, dataKey, eg.data),
		ID:      eg.id,
		Source:  topic,
		Type:    eg.eventType,
		Subject: eg.subject,
		Time:    eg.time,
	}
}

// ToEventGrid renders a canonical event (Event.JSON) in the Event Grid
// schema, for delivery to subscriptions that want it. For an event from
// ParseEventGridEvents it gives back the event as published, with topic
// set, metadataVersion "1" and dataVersion "" if it had none — what Event
// Grid delivers.
//
// Any CloudEvent maps the same way:
//
//	topic           ← source
//	subject         ← subject, or "" (Event Grid requires one)
//	eventType       ← type
//	eventTime       ← egeventtime if it is the same instant as time, else time
//	id              ← id
//	data            ← data as stored, or data_base64's string; left out if neither
//	dataVersion     ← dataversion (a number or boolean as its JSON text), or ""
//	metadataVersion ← "1"
//
// Other attributes (datacontenttype, dataschema, partitionkey, other
// extensions) have no place in the Event Grid schema and are left out. An
// event without time is an error: ingest stamps publish time on events
// without one before it stores them.
func ToEventGrid(e []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e, &m); err != nil {
		return nil, fmt.Errorf("schemas: ToEventGrid: not a CloudEvent: %w", err)
	}
	isString := func(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }
	for _, name := range []string{attrID, attrSource, attrType, attrTime} {
		if !isString(m[name]) {
			return nil, fmt.Errorf("schemas: ToEventGrid: CloudEvent has no string %s", name)
		}
	}
	eventTime := m[attrTime]
	var ts, egs string
	if isString(m[attrEventGridTime]) &&
		json.Unmarshal(m[attrTime], &ts) == nil && json.Unmarshal(m[attrEventGridTime], &egs) == nil {
		t, ok1 := parseTime(ts)
		eg, _, ok2 := parseEventGridTime(egs)
		if ok1 && ok2 && t.Equal(eg) {
			eventTime = m[attrEventGridTime]
		}
	}
	subject := m[attrSubject]
	if !isString(subject) {
		subject = json.RawMessage(`""`)
	}
	dataVersion := m[attrDataVersion]
	switch {
	case len(dataVersion) == 0 || string(dataVersion) == "null":
		dataVersion = json.RawMessage(`""`)
	case !isString(dataVersion):
		dataVersion = appendString(nil, string(dataVersion))
	}
	data, hasData := m[memberData]
	if !hasData {
		data, hasData = m[memberDataBase64]
	}

	b := make([]byte, 0, len(e)+64)
	member := func(name string, value []byte) {
		if len(b) == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = append(b, value...)
	}
	member("topic", m[attrSource])
	member("subject", subject)
	member("eventType", m[attrType])
	member("eventTime", eventTime)
	member("id", m[attrID])
	if hasData {
		member("data", data)
	}
	member("dataVersion", dataVersion)
	member("metadataVersion", []byte(`"1"`))
	return append(b, '}'), nil
}
