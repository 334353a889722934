package apierr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

type response struct {
	status  int
	header  http.Header
	body    body
	rawBody string
	log     string
}

func write(t *testing.T, err error) response {
	t.Helper()
	var logs bytes.Buffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodPut, "/api/topics/orders", nil), log, err)
	res := response{status: rec.Code, header: rec.Header(), rawBody: rec.Body.String(), log: logs.String()}
	dec := json.NewDecoder(strings.NewReader(res.rawBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res.body); err != nil {
		t.Fatalf("body %q is not an Event Grid error: %v", res.rawBody, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return res
}

func TestMappings(t *testing.T) {
	var mbe *http.MaxBytesError
	{
		// Produce a real MaxBytesError.
		r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader("0123456789")), 4)
		_, err := io.ReadAll(r)
		if !errors.As(err, &mbe) {
			t.Fatalf("no MaxBytesError: %v", err)
		}
	}
	var syntaxErr error = json.Unmarshal([]byte("{"), new(any))
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		msgHas     string
	}{
		{"apierr", Conflict("topic \"orders\" exists"), 409, CodeConflict, "", "topic \"orders\" exists"},
		{"apierr wrapped", fmt.Errorf("put: %w", NotFound("no topic")), 404, CodeNotFound, "", "no topic"},
		{"bad request", BadRequest("InvalidKeyName", "keyName must be key1 or key2"), 400, CodeBadRequest, "", "keyName"},
		{"unauthorized", Unauthorized("missing token"), 401, CodeUnauthorized, "", "missing token"},
		{"precondition", PreconditionFailed("stale"), 412, CodePreconditionFailed, "", "stale"},
		{"too large", TooLarge("big"), 413, CodeTooLarge, "", "big"},
		{"media type", UnsupportedMediaType("json only"), 415, CodeUnsupportedMediaType, "", "json only"},
		{"unavailable", Unavailable("later", 1500*time.Millisecond), 503, CodeUnavailable, "2", "later"},
		{"max bytes", fmt.Errorf("read body: %w", mbe), 413, CodeTooLarge, "", "4 bytes"},
		{"json syntax", syntaxErr, 400, CodeBadRequest, "", "not valid JSON"},
		{"not found", fmt.Errorf("get x: %w", objectlog.ErrNotFound), 404, CodeNotFound, "", "does not exist"},
		{"store precondition", fmt.Errorf("put: %w", objectlog.ErrPreconditionFailed), 412, CodePreconditionFailed, "", "etag"},
		{"invalid key", fmt.Errorf("put: %w", objectlog.ErrInvalidKey), 400, CodeBadRequest, "", "cannot be stored"},
		{"transient", fmt.Errorf("get: %w", objectlog.ErrTransient), 503, CodeUnavailable, "1", "retry"},
		{"store conflict", fmt.Errorf("put: %w", objectlog.ErrConflict), 503, CodeUnavailable, "1", "retry"},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), 503, CodeUnavailable, "1", "retry"},
		{"other", errors.New("disk on fire at /var/lib/secret-path"), 500, CodeInternal, "", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := write(t, tc.err)
			if res.status != tc.status || res.body.Error.Code != tc.code {
				t.Errorf("got %d %s, want %d %s (body %s)", res.status, res.body.Error.Code, tc.status, tc.code, res.rawBody)
			}
			if got := res.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if !strings.Contains(res.body.Error.Message, tc.msgHas) {
				t.Errorf("message %q lacks %q", res.body.Error.Message, tc.msgHas)
			}
		})
	}
}

func TestValidationErrorDetails(t *testing.T) {
	ve := &schemas.ValidationError{Errors: []schemas.FieldError{
		{Field: "filter.advancedFilters[3].values", Message: "at most 25 values"},
		{Field: "properties.partitions", Message: "must be between 1 and 64"},
	}}
	res := write(t, fmt.Errorf("validate: %w", ve))
	if res.status != 400 || res.body.Error.Code != CodeBadRequest {
		t.Fatalf("got %d %s", res.status, res.body.Error.Code)
	}
	want := []Detail{
		{CodeInvalidField, "filter.advancedFilters[3].values: at most 25 values"},
		{CodeInvalidField, "properties.partitions: must be between 1 and 64"},
	}
	if fmt.Sprint(res.body.Error.Details) != fmt.Sprint(want) {
		t.Errorf("details = %v, want %v", res.body.Error.Details, want)
	}
	for _, d := range want {
		if !strings.Contains(res.body.Error.Message, d.Message) {
			t.Errorf("message %q does not list %q", res.body.Error.Message, d.Message)
		}
	}
}

func TestInvalidField(t *testing.T) {
	res := write(t, InvalidField("properties.partitions", "cannot change after creation"))
	if res.status != 400 || len(res.body.Error.Details) != 1 ||
		res.body.Error.Details[0] != (Detail{CodeInvalidField, "properties.partitions: cannot change after creation"}) {
		t.Errorf("got %d %s", res.status, res.rawBody)
	}
}

// A 500 must not leak the cause to the client, and must log it at error level.
func TestInternalErrorIsLoggedNotLeaked(t *testing.T) {
	res := write(t, errors.New("disk on fire at /var/lib/secret-path"))
	if strings.Contains(res.rawBody, "secret-path") {
		t.Errorf("body leaks the cause: %s", res.rawBody)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(res.log), &entry); err != nil {
		t.Fatalf("log %q: %v", res.log, err)
	}
	if entry["level"] != "error" || !strings.Contains(fmt.Sprint(entry["error"]), "secret-path") {
		t.Errorf("log entry = %v, want the cause at error level", entry)
	}
}

// The cause of an Error is matched by errors.Is and logged, never sent.
func TestCause(t *testing.T) {
	err := PreconditionFailed("topic changed").WithCause(fmt.Errorf("put_if_match: %w", objectlog.ErrPreconditionFailed))
	if !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Error("errors.Is does not see the cause")
	}
	res := write(t, err)
	if strings.Contains(res.rawBody, "put_if_match") {
		t.Errorf("body leaks the cause: %s", res.rawBody)
	}
	if res.body.Error.Details != nil {
		t.Errorf("unexpected details: %v", res.body.Error.Details)
	}
}
