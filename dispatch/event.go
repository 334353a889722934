package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is one logged event on its way to a subscriber: the canonical
// CloudEvent as stored, where it was read from, and the few attributes
// filtering and delivery look at, decoded once.
type Event struct {
	Partition int
	Offset    int64
	// JSON is the canonical CloudEvents 1.0 JSON object as stored.
	JSON []byte
	// ID, Source, Type and Subject are the CloudEvents attributes ("" for
	// an absent subject). DataVersion is the dataversion extension, which
	// is where an Event Grid schema event's dataVersion is kept ("" when
	// absent; a number or boolean as its JSON text, as ToEventGrid does).
	ID, Source, Type, Subject, DataVersion string
	// Time is the time attribute in UTC.
	Time time.Time
	// Published is when the event was committed to the log; the caller
	// sets it (ParseEvent cannot know it).
	Published time.Time
}

// Attribute names ParseEvent reads. They are the schemas package's names
// for the same attributes (schemas keeps them unexported).
const (
	ceID          = "id"
	ceSource      = "source"
	ceType        = "type"
	ceSubject     = "subject"
	ceTime        = "time"
	ceDataVersion = "dataversion"
	ceData        = "data"
)

// ParseEvent decodes the attributes Event has from a stored canonical
// CloudEvent; Partition, Offset and Published are left for the caller.
// It walks the object's members once and never decodes data, so its cost
// is a scan of the bytes. id, source and type are required; time is
// written by ingest on every event (it stamps the publish time on events
// that come without one), but an event without it is still read, with a
// zero Time.
func ParseEvent(data []byte) (Event, error) {
	e := Event{JSON: data}
	var timeText string
	var seen uint8
	const (
		seenID = 1 << iota
		seenSource
		seenType
		seenTime
		seenAll = seenID | seenSource | seenType
	)
	err := forEachMember(data, func(key []byte, value []byte) (bool, error) {
		var dst *string
		var bit uint8
		switch string(key) {
		case ceID:
			dst, bit = &e.ID, seenID
		case ceSource:
			dst, bit = &e.Source, seenSource
		case ceType:
			dst, bit = &e.Type, seenType
		case ceTime:
			dst, bit = &timeText, seenTime
		case ceSubject:
			dst = &e.Subject
		case ceDataVersion:
			if value[0] != '"' {
				if !bytes.Equal(value, []byte("null")) {
					e.DataVersion = string(value)
				}
				return true, nil
			}
			dst = &e.DataVersion
		default:
			return true, nil
		}
		s, ok := jsonString(value)
		if !ok {
			return false, fmt.Errorf("attribute %s is not a string", string(key))
		}
		*dst = s
		seen |= bit
		return true, nil
	})
	if err != nil {
		return Event{}, fmt.Errorf("dispatch: parse event: %w", err)
	}
	if seen&seenAll != seenAll {
		var missing []string
		for bit, name := range []string{ceID, ceSource, ceType} {
			if seen&(1<<bit) == 0 {
				missing = append(missing, name)
			}
		}
		return Event{}, fmt.Errorf("dispatch: parse event: no %s", strings.Join(missing, ", "))
	}
	if seen&seenTime == 0 {
		return e, nil
	}
	t, err := time.Parse(time.RFC3339Nano, timeText)
	if err != nil {
		return Event{}, fmt.Errorf("dispatch: parse event %q: time: %w", e.ID, err)
	}
	e.Time = t.UTC()
	return e, nil
}

// eventAttribute returns the value of a top-level member of the event object,
// or of a member nested in data for a "data.a.b" path, as a header value:
// strings unquoted, numbers and booleans as their JSON text. Objects,
// arrays, null and missing members give ok false.
func eventAttribute(event []byte, path string) (value string, ok bool) {
	doc := event
	names := []string{path}
	if rest, nested := strings.CutPrefix(path, ceData+"."); nested {
		names = append([]string{ceData}, strings.Split(rest, ".")...)
	}
	for i, name := range names {
		var found []byte
		err := forEachMember(doc, func(key []byte, v []byte) (bool, error) {
			if string(key) == name {
				found = v
				return false, nil
			}
			return true, nil
		})
		if err != nil || found == nil {
			return "", false
		}
		if i < len(names)-1 {
			if found[0] != '{' {
				return "", false
			}
			doc = found
			continue
		}
		switch found[0] {
		case '"':
			return jsonString(found)
		case '{', '[', 'n':
			return "", false
		default:
			return string(found), true
		}
	}
	return "", false
}

// jsonString decodes a JSON string value; the common case (no escapes)
// costs one copy.
func jsonString(value []byte) (string, bool) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return "", false
	}
	inner := value[1 : len(value)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(value, &s) != nil {
		return "", false
	}
	return s, true
}

var errMalformedJSON = errors.New("not a well-formed JSON object")

// forEachMember calls fn with each member of the JSON object doc, in order,
// until fn returns false or an error. Keys are decoded (without copying
// when they have no escapes); values are the raw bytes of the value (never
// empty). Both are only valid during the call. It checks structure only as far as it
// needs to find where values end: doc is expected to be valid JSON, as
// stored events are, and malformed input gives an error, never a panic.
func forEachMember(doc []byte, fn func(key, value []byte) (bool, error)) error {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return errMalformedJSON
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return nil
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return errMalformedJSON
		}
		end, err := skipString(doc, i)
		if err != nil {
			return err
		}
		key := doc[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, ok := jsonString(doc[i:end])
			if !ok {
				return errMalformedJSON
			}
			key = []byte(k)
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return errMalformedJSON
		}
		i = skipSpace(doc, i+1)
		end, err = skipValue(doc, i)
		if err != nil {
			return err
		}
		more, err := fn(key, doc[i:end])
		if err != nil || !more {
			return err
		}
		i = skipSpace(doc, end)
		if i >= len(doc) {
			return errMalformedJSON
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return nil
		default:
			return errMalformedJSON
		}
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the offset just after the string that starts at
// doc[i] (a quote).
func skipString(doc []byte, i int) (int, error) {
	j := i + 1
	for {
		q := bytes.IndexByte(doc[j:], '"')
		if q < 0 {
			return 0, errMalformedJSON
		}
		j += q
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for k := j - 1; k > i && doc[k] == '\\'; k-- {
			n++
		}
		j++
		if n%2 == 0 {
			return j, nil
		}
	}
}

// skipValue returns the offset just after the value that starts at doc[i].
func skipValue(doc []byte, i int) (int, error) {
	if i >= len(doc) {
		return 0, errMalformedJSON
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				end, err := skipString(doc, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errMalformedJSON
	case ',', ':', '}', ']':
		return 0, errMalformedJSON
	default: // a number, true, false or null
		j := i
		for j < len(doc) {
			switch doc[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j, nil
			}
			j++
		}
		return j, nil
	}
}
