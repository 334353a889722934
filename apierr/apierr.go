// Package apierr turns errors into Event Grid error responses: it is the one
// place that decides which status code and body an error becomes.
//
// Every error response has the body Event Grid uses,
//
//	{"error":{"code":"BadRequest","message":"…","details":[{"code":"InvalidField","message":"…"}]}}
//
// with Content-Type application/json. Codes are the names of the HTTP
// statuses, as Event Grid's own responses use them (BadRequest, NotFound,
// Conflict…), so a client that switches on the code behaves as it does
// against Azure; details carry the specific cause (InvalidField for each
// failed validation, InvalidJson for a body that cannot be decoded).
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Top-level error codes.
const (
	CodeBadRequest           = "BadRequest"
	CodeUnauthorized         = "Unauthorized"
	CodeNotFound             = "NotFound"
	CodeConflict             = "Conflict"
	CodePreconditionFailed   = "PreconditionFailed"
	CodeTooLarge             = "RequestEntityTooLarge"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeMethodNotAllowed     = "MethodNotAllowed"
	CodeInternal             = "InternalServerError"
	CodeUnavailable          = "ServiceUnavailable"
)

// Detail codes.
const (
	// CodeInvalidField is the detail code of one failed field validation;
	// its message starts with the field's JSON path.
	CodeInvalidField = "InvalidField"
	// CodeInvalidJSON is the detail code of a body that does not decode.
	CodeInvalidJSON = "InvalidJson"
)

// Error is an error that knows its HTTP response.
type Error struct {
	Status  int
	Code    string
	Message string
	Details []Detail
	// RetryAfter, when positive, is sent as the Retry-After header (in
	// whole seconds, rounded up).
	RetryAfter time.Duration

	cause error
}

// Detail is one entry of the details array.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

// Unwrap returns the cause given to WithCause, so that errors.Is sees
// through an Error to, say, objectlog.ErrPreconditionFailed.
func (e *Error) Unwrap() error { return e.cause }

// WithCause records the error that caused e. The cause is logged and
// matched by errors.Is, never sent to the client.
func (e *Error) WithCause(err error) *Error {
	e.cause = err
	return e
}

// New returns an error with any status and code.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// BadRequest (400) with a detail of the given code (none if code is empty).
func BadRequest(code, msg string) *Error {
	e := New(http.StatusBadRequest, CodeBadRequest, msg)
	if code != "" && code != CodeBadRequest {
		e.Details = []Detail{{Code: code, Message: msg}}
	}
	return e
}

// InvalidField is a 400 naming one field by its JSON path, shaped like a
// failed validation.
func InvalidField(field, msg string) *Error {
	return fromFieldErrors([]schemas.FieldError{{Field: field, Message: msg}})
}

// Unauthorized (401).
func Unauthorized(msg string) *Error { return New(http.StatusUnauthorized, CodeUnauthorized, msg) }

// NotFound (404).
func NotFound(msg string) *Error { return New(http.StatusNotFound, CodeNotFound, msg) }

// Conflict (409): the resource exists and the request required it not to.
func Conflict(msg string) *Error { return New(http.StatusConflict, CodeConflict, msg) }

// PreconditionFailed (412): If-Match named a version that is not current.
func PreconditionFailed(msg string) *Error {
	return New(http.StatusPreconditionFailed, CodePreconditionFailed, msg)
}

// TooLarge (413).
func TooLarge(msg string) *Error { return New(http.StatusRequestEntityTooLarge, CodeTooLarge, msg) }

// UnsupportedMediaType (415).
func UnsupportedMediaType(msg string) *Error {
	return New(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, msg)
}

// Unavailable (503) with a Retry-After header.
func Unavailable(msg string, retryAfter time.Duration) *Error {
	e := New(http.StatusServiceUnavailable, CodeUnavailable, msg)
	e.RetryAfter = retryAfter
	return e
}

// From maps any error to the Error it is answered with:
//
//	*Error                                  as is
//	*schemas.ValidationError                400, one InvalidField detail per field
//	*http.MaxBytesError                     413
//	*json.SyntaxError, *json.UnmarshalTypeError  400 InvalidJson
//	objectlog.ErrNotFound                   404
//	objectlog.ErrPreconditionFailed         412
//	objectlog.ErrInvalidKey                 400 (a name the store cannot hold)
//	objectlog.ErrTransient, ErrConflict,
//	context deadline or cancellation        503, Retry-After: 1
//	anything else                           500 with a generic message
//
// The first match in this order wins, so an *Error wrapping
// objectlog.ErrNotFound keeps its own status and message.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ve *schemas.ValidationError
	if errors.As(err, &ve) {
		return fromFieldErrors(ve.Errors).WithCause(err)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return TooLarge(fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)).WithCause(err)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return BadRequest(CodeInvalidJSON, "the request body is not valid JSON: "+err.Error()).WithCause(err)
	}
	switch {
	case errors.Is(err, objectlog.ErrNotFound):
		return NotFound("the resource does not exist").WithCause(err)
	case errors.Is(err, objectlog.ErrPreconditionFailed):
		return PreconditionFailed("the resource was changed by another request; read it again and retry with its new etag").WithCause(err)
	case errors.Is(err, objectlog.ErrInvalidKey):
		return BadRequest("", "the resource name cannot be stored").WithCause(err)
	case errors.Is(err, objectlog.ErrTransient), errors.Is(err, objectlog.ErrConflict),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Unavailable("the store is busy or unavailable; retry shortly", time.Second).WithCause(err)
	}
	return New(http.StatusInternalServerError, CodeInternal, "internal error; the server log has the details").WithCause(err)
}

// fromFieldErrors is the 400 for failed validations: the message lists
// every field, and each becomes one detail.
func fromFieldErrors(fields []schemas.FieldError) *Error {
	e := New(http.StatusBadRequest, CodeBadRequest, "")
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		m := f.Message
		if f.Field != "" {
			m = f.Field + ": " + f.Message
		}
		parts = append(parts, m)
		e.Details = append(e.Details, Detail{Code: CodeInvalidField, Message: m})
	}
	switch len(parts) {
	case 0:
		e.Message = "the request is invalid"
	case 1:
		e.Message = "the request is invalid: " + parts[0]
	default:
		e.Message = fmt.Sprintf("the request is invalid (%d problems): %s", len(parts), strings.Join(parts, "; "))
	}
	return e
}

// body is the JSON shape of an error response.
type body struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []Detail `json:"details,omitempty"`
	} `json:"error"`
}

// Write answers the request with err mapped by From. Server errors (5xx)
// are logged with their cause: 500 at error level, 503 at warn level;
// client errors at debug level. The cause of an error is never sent.
func Write(w http.ResponseWriter, r *http.Request, log zerolog.Logger, err error) {
	e := From(err)
	ev := log.Debug()
	switch {
	case e.Status >= 500 && e.Status != http.StatusServiceUnavailable:
		ev = log.Error()
	case e.Status >= 500:
		ev = log.Warn()
	}
	if r != nil {
		ev = ev.Str("method", r.Method).Str("path", r.URL.Path)
	}
	ev.Err(err).Int("status", e.Status).Str("code", e.Code).Msg("request failed")

	var b body
	b.Error.Code, b.Error.Message, b.Error.Details = e.Code, e.Message, e.Details
	data, mErr := json.Marshal(b)
	if mErr != nil { // cannot happen with strings only
		data = []byte(`{"error":{"code":"InternalServerError","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(data, '\n'))
}
