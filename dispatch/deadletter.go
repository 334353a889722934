package dispatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Dead-letter reasons, as Event Grid writes them in deadLetterReason.
const (
	ReasonMaxDeliveryAttempts = "MaxDeliveryAttemptsExceeded"
	ReasonTTL                 = "TimeToLiveExceeded"
	// ReasonNonRetriable: the endpoint answered 400, 401, 403 or 413
	// (lastHttpStatusCode says which), or the event could not be rendered.
	ReasonNonRetriable = "NonRetriableStatusCode"
)

// DeadLetter is one undeliverable event and why.
type DeadLetter struct {
	Event            *Event
	Reason           string // a Reason* constant
	DeliveryAttempts int
	// LastDeliveryOutcome is the last attempt's Outcome.Description.
	LastDeliveryOutcome string
	// LastHTTPStatusCode is the last attempt's status, 0 if it got no answer.
	LastHTTPStatusCode int
	// LastDeliveryAttemptTime is zero if no attempt was made (the event
	// outlived its time to live first).
	LastDeliveryAttemptTime time.Time
}

// deadLetterRoot is where dead letters live, in sluice's own store or in
// a subscription's StorageBucket dead-letter destination alike.
const deadLetterRoot = "deadletter/"

// DeadLetterPrefix is the key prefix of a subscription's dead letters:
//
//	deadletter/<topic>/<subscription>/<yyyy>/<mm>/<dd>/<hh>/<ulid>.json
//
// Names are lower-cased, as in the registry's keys (Event Grid names are
// case-insensitive); the hour is UTC and the ULID's time is the write
// time, so key order is time order.
func DeadLetterPrefix(topic, sub string) string {
	return deadLetterRoot + strings.ToLower(topic) + "/" + strings.ToLower(sub) + "/"
}

func deadLetterKey(topic, sub string, id ulid.ULID) string {
	t := ulid.Time(id.Time()).UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%02d/%s.json", DeadLetterPrefix(topic, sub),
		t.Year(), int(t.Month()), t.Day(), t.Hour(), id)
}

// DeadLetterKeyTime is when the dead-letter object key was written, read
// from its ULID; ok is false for a key that is not a dead-letter object's.
func DeadLetterKeyTime(key string) (t time.Time, ok bool) {
	i := strings.LastIndexByte(key, '/')
	name, isJSON := strings.CutSuffix(key[i+1:], ".json")
	if !isJSON {
		return time.Time{}, false
	}
	id, err := ulid.ParseStrict(name)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(id.Time()).UTC(), true
}

// DeadLetterKey returns the full key of a subscription's dead-letter
// object named by ref: a full key, a key relative to DeadLetterPrefix
// (yyyy/mm/dd/hh/<ulid>.json), or just the ULID (with or without .json).
// Its errors are about ref, worded for whoever typed it.
func DeadLetterKey(topic, sub, ref string) (string, error) {
	prefix := DeadLetterPrefix(topic, sub)
	switch {
	case strings.HasPrefix(ref, deadLetterRoot):
		if !strings.HasPrefix(ref, prefix) {
			return "", fmt.Errorf("%q is not a dead letter of %s/%s (keys begin %s)", ref, topic, sub, prefix)
		}
		return ref, nil
	case strings.Contains(ref, "/"):
		return prefix + ref, nil
	default:
		id, err := ulid.ParseStrict(strings.TrimSuffix(ref, ".json"))
		if err != nil {
			return "", fmt.Errorf("%q is neither a dead-letter key nor a ULID", ref)
		}
		return deadLetterKey(topic, sub, id), nil
	}
}

// WriteDeadLetters writes dls as one object (create-if-absent) under the
// subscription's DeadLetterPrefix, in the hour of now (UTC), and returns
// its key. The object is a JSON array with one record per dead letter: the
// event rendered in schema, the subscription's delivery schema (as
// delivered: the CloudEvent, or the Event Grid event), with these members
// added —
//
//	deadLetterReason         a Reason* constant
//	deliveryAttempts         attempts made
//	lastDeliveryOutcome      Outcome.Description of the last attempt
//	lastHttpStatusCode       its status, 0 if there was no answer
//	publishTime              Event.Published, RFC 3339 UTC (null if unknown)
//	lastDeliveryAttemptTime  RFC 3339 UTC (null if no attempt was made)
//
// None of them can clash with the event's own members: CloudEvents
// attribute names are lower-case and the Event Grid schema has fixed ones.
// With no dead letters it writes nothing and returns "".
func WriteDeadLetters(ctx context.Context, store *objectlog.Store, topic, sub, schema string, now time.Time, dls []DeadLetter) (key string, err error) {
	if len(dls) == 0 {
		return "", nil
	}
	body, err := renderDeadLetters(schema, dls)
	if err != nil {
		return "", err
	}
	// A collision of two ULIDs is as good as impossible; a write that the
	// store retried after it had in fact landed is not, and finds its own
	// bytes in place.
	for range 3 {
		key = deadLetterKey(topic, sub, ulid.MustNew(ulid.Timestamp(now), rand.Reader))
		_, err = store.PutIfAbsent(ctx, key, body)
		if !errors.Is(err, objectlog.ErrPreconditionFailed) {
			break
		}
		if got, _, gerr := store.Get(ctx, key); gerr == nil && bytes.Equal(got, body) {
			return key, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("dispatch: write %d dead letter(s) to %s: %w", len(dls), key, err)
	}
	return key, nil
}

func renderDeadLetters(schema string, dls []DeadLetter) ([]byte, error) {
	var b []byte
	b = append(b, '[')
	for i, dl := range dls {
		if dl.Event == nil {
			return nil, fmt.Errorf("dispatch: dead letter %d has no event", i)
		}
		var ev []byte
		switch schema {
		case schemas.CloudEventSchemaV1_0:
			ev = dl.Event.JSON
		case schemas.EventGridSchema:
			var err error
			if ev, err = schemas.ToEventGrid(dl.Event.JSON); err != nil {
				return nil, fmt.Errorf("dispatch: dead letter %q: %w", dl.Event.ID, err)
			}
		default:
			return nil, fmt.Errorf("dispatch: dead letters: unknown delivery schema %q", schema)
		}
		ev = bytes.TrimSpace(ev)
		if len(ev) < 2 || ev[0] != '{' || ev[len(ev)-1] != '}' {
			return nil, fmt.Errorf("dispatch: dead letter %q: the event is not a JSON object", dl.Event.ID)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev[:len(ev)-1]...)
		if len(ev) > 2 {
			b = append(b, ',')
		}
		b = append(b, `"deadLetterReason":`...)
		b = appendJSONString(b, dl.Reason)
		b = append(b, `,"deliveryAttempts":`...)
		b = strconv.AppendInt(b, int64(dl.DeliveryAttempts), 10)
		b = append(b, `,"lastDeliveryOutcome":`...)
		b = appendJSONString(b, dl.LastDeliveryOutcome)
		b = append(b, `,"lastHttpStatusCode":`...)
		b = strconv.AppendInt(b, int64(dl.LastHTTPStatusCode), 10)
		b = append(b, `,"publishTime":`...)
		b = appendJSONTime(b, dl.Event.Published)
		b = append(b, `,"lastDeliveryAttemptTime":`...)
		b = appendJSONTime(b, dl.LastDeliveryAttemptTime)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// ListDeadLetters calls fn with the key and records of each of a
// subscription's dead-letter objects, in key order (which is time order).
func ListDeadLetters(ctx context.Context, store *objectlog.Store, topic, sub string, fn func(key string, recs []json.RawMessage) error) error {
	return ListDeadLettersSince(ctx, store, topic, sub, time.Time{}, fn)
}

// ListDeadLettersSince is ListDeadLetters for the objects written at or
// after since (all of them if since is zero). Earlier objects are skipped
// by their key, without reading them.
func ListDeadLettersSince(ctx context.Context, store *objectlog.Store, topic, sub string, since time.Time, fn func(key string, recs []json.RawMessage) error) error {
	prefix := DeadLetterPrefix(topic, sub)
	// Keys end in a millisecond ULID; compare at that resolution.
	since = since.Truncate(time.Millisecond)
	err := store.ListAll(ctx, prefix, func(o objectlog.ObjectInfo) error {
		if !since.IsZero() {
			if t, ok := DeadLetterKeyTime(o.Key); ok && t.Before(since) {
				return nil
			}
		}
		recs, err := ReadDeadLetters(ctx, store, o.Key)
		if errors.Is(err, objectlog.ErrNotFound) {
			return nil // deleted since it was listed
		}
		if err != nil {
			return err
		}
		return fn(o.Key, recs)
	})
	if err != nil {
		return fmt.Errorf("dispatch: list dead letters of %s/%s: %w", topic, sub, err)
	}
	return nil
}

// ReadDeadLetters reads the records of one dead-letter object.
func ReadDeadLetters(ctx context.Context, store *objectlog.Store, key string) ([]json.RawMessage, error) {
	data, _, err := store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("dispatch: read dead letters %s: %w", key, err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("dispatch: read dead letters %s: not a JSON array: %w", key, err)
	}
	return recs, nil
}
