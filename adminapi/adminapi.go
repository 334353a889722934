// Package adminapi is the admin REST API: topics, their keys and their
// event subscriptions, as JSON resources shaped like Event Grid's ARM
// resources, behind the admin token.
//
//	PUT    /api/topics/{topic}                               201 created | 200 replaced
//	GET    /api/topics                                       {"value":[…]}
//	GET    /api/topics/{topic}
//	DELETE /api/topics/{topic}                               200 deleted | 204 did not exist
//	POST   /api/topics/{topic}/listKeys                      {"key1","key2"}
//	POST   /api/topics/{topic}/regenerateKey                 {"keyName":"key1"} → {"key1","key2"}
//	PUT    /api/topics/{topic}/eventSubscriptions/{sub}      201 | 200
//	GET    /api/topics/{topic}/eventSubscriptions            {"value":[…]}
//	GET    /api/topics/{topic}/eventSubscriptions/{sub}      ?secrets=true shows secrets
//	DELETE /api/topics/{topic}/eventSubscriptions/{sub}      200 | 204
//	POST   /api/topics/{topic}/eventSubscriptions/{sub}/seek {"time":…} | {"position":"earliest"|"latest"}
//	GET    /api/topics/{topic}/eventSubscriptions/{sub}/positions  cursor, tail and backlog per partition
//	POST   /api/topics/{topic}/eventSubscriptions/{sub}/rotateSigningSecret  {"overlapMinutes":1440} → new secret
//
// Every /api route needs "Authorization: Bearer <admin token>". PUT takes
// "If-Match: <etag>" (replace only that version, else 412) or
// "If-None-Match: *" (create only, else 409); responses carry the etag in
// the body and, quoted, in the ETag header; DELETE refuses both headers
// (the store has no conditional delete). Request bodies are JSON of at
// most 1 MiB. Errors have Event Grid's body (see apierr).
//
// With Options.DevEcho, /dev/echo (no auth) is a webhook receiver for
// trying sluice out (see echo.go), and POST /dev/null a no-op endpoint for
// `sluice bench`'s baseline.
package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// MaxBodyBytes bounds request bodies; larger ones are answered 413.
const MaxBodyBytes = 1 << 20

// Options configure the handler.
type Options struct {
	// DevEcho mounts the development webhook receiver at /dev/echo,
	// without authentication. Never enable it on a public address.
	DevEcho bool
	// Log is the event log, for replay (seek) and positions; without it
	// those routes answer 501.
	Log *objectlog.Log
}

type handler struct {
	reg  *controlplane.Registry
	log  zerolog.Logger
	elog *objectlog.Log
}

// NewHandler returns the admin API over reg. Mount it at the root: its
// routes start with /api/ (and /dev/echo).
func NewHandler(reg *controlplane.Registry, log zerolog.Logger, opts Options) http.Handler {
	h := &handler{reg: reg, log: log, elog: opts.Log}
	r := chi.NewRouter()
	r.Use(h.recoverer, h.accessLog)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, r, h.log, apierr.NotFound(fmt.Sprintf("no such route: %s %s", r.Method, r.URL.Path)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, r, h.log, apierr.New(http.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)))
	})
	r.Route("/api", func(r chi.Router) {
		r.Use(h.auth)
		r.Get("/topics", h.listTopics)
		r.Put("/topics/{topic}", h.putTopic)
		r.Get("/topics/{topic}", h.getTopic)
		r.Delete("/topics/{topic}", h.deleteTopic)
		r.Post("/topics/{topic}/listKeys", h.listKeys)
		r.Post("/topics/{topic}/regenerateKey", h.regenerateKey)
		r.Get("/topics/{topic}/eventSubscriptions", h.listSubscriptions)
		r.Put("/topics/{topic}/eventSubscriptions/{sub}", h.putSubscription)
		r.Get("/topics/{topic}/eventSubscriptions/{sub}", h.getSubscription)
		r.Delete("/topics/{topic}/eventSubscriptions/{sub}", h.deleteSubscription)
		r.Post("/topics/{topic}/eventSubscriptions/{sub}/seek", h.seek)
		r.Get("/topics/{topic}/eventSubscriptions/{sub}/positions", h.positions)
		r.Post("/topics/{topic}/eventSubscriptions/{sub}/rotateSigningSecret", h.rotateSigningSecret)
	})
	// An endpoint confirms its validation here (the validationUrl it was
	// sent): no admin token, the code is the credential.
	r.Get("/validate/{topic}/{sub}", h.confirmValidation)
	if opts.DevEcho {
		e := newEcho(log)
		r.Post("/dev/echo", e.receive)
		r.Options("/dev/echo", e.abuseProtection)
		r.Get("/dev/echo", e.list)
		// A no-op handler on the same HTTP stack as publishing: the
		// baseline `sluice bench` measures the server's throughput against.
		r.Post("/dev/null", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			w.WriteHeader(http.StatusOK)
		})
	}
	return r
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	apierr.Write(w, r, h.log, err)
}

// auth admits requests bearing the admin token.
func (h *handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		var err error
		switch {
		case !ok:
			err = apierr.Unauthorized("missing admin token: send the header \"Authorization: Bearer <admin token>\"")
		case !h.reg.CheckAdminToken(r.Context(), token):
			err = apierr.Unauthorized("the admin token is not valid")
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			h.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// recoverer answers a panic with a 500 in the Event Grid shape.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.fail(w, r, fmt.Errorf("panic: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (h *handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		h.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
			Dur("took", time.Since(start)).Msg("admin api")
	})
}

// readBody reads a JSON request body of at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, apierr.UnsupportedMediaType(fmt.Sprintf("Content-Type %q is not supported; send application/json", ct))
		}
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, apierr.TooLarge(fmt.Sprintf("the request body is %d bytes; the limit is %d", r.ContentLength, MaxBodyBytes))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if err != nil && !errors.As(err, &mbe) {
		return nil, apierr.BadRequest("", "cannot read the request body").WithCause(err)
	}
	return body, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client is gone if this fails
}

// list is the ARM shape of a collection.
type list[T any] struct {
	Value []T `json:"value"`
}

// etagHeader quotes a version for the ETag header (RFC 9110 entity-tag).
func etagHeader(v string) string { return `"` + v + `"` }

// ifMatch returns the If-Match header as the registry takes it: a bare
// version, "*", or "" when absent. Quotes and a weak prefix are dropped.
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "*" {
		return v
	}
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

// createOnly reads If-None-Match, of which only "*" is meaningful on PUT.
func createOnly(r *http.Request) (bool, error) {
	switch v := strings.TrimSpace(r.Header.Get("If-None-Match")); v {
	case "":
		return false, nil
	case "*":
		return true, nil
	default:
		return false, apierr.BadRequest("", fmt.Sprintf("If-None-Match %q is not supported; use * to create only", v))
	}
}

// checkBodyName fills an empty body name from the URL and rejects a
// different one.
func checkBodyName(body *string, url string) error {
	switch {
	case *body == "":
		*body = url
	case !strings.EqualFold(*body, url):
		return apierr.InvalidField("name", fmt.Sprintf("%q differs from the name in the URL, %q", *body, url))
	}
	return nil
}

// unconditional rejects If-Match on DELETE: the store has no conditional
// delete, and ignoring the header would promise what is not done.
func unconditional(r *http.Request) error {
	if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" {
		return apierr.BadRequest("", "If-Match and If-None-Match are not supported on DELETE")
	}
	return nil
}

// deleted answers a delete: 200 when it deleted, 204 when there was
// nothing to delete (Event Grid's and ARM's convention).
func (h *handler) deleted(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case apierr.From(err).Status == http.StatusNotFound:
		w.WriteHeader(http.StatusNoContent)
	default:
		h.fail(w, r, err)
	}
}

func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (h *handler) putTopic(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "topic")
	if err := schemas.ValidateTopicName(name); err != nil {
		h.fail(w, r, err)
		return
	}
	only, err := createOnly(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := schemas.DecodeTopic(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkBodyName(&t.Name, name); err != nil {
		h.fail(w, r, err)
		return
	}
	out, created, err := h.reg.PutTopic(r.Context(), t, ifMatch(r), only)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etagHeader(out.Version))
	if created {
		w.Header().Set("Location", "/api/topics/"+out.Name)
	}
	writeJSON(w, putStatus(created), out)
}

func (h *handler) getTopic(w http.ResponseWriter, r *http.Request) {
	t, err := h.reg.GetTopic(r.Context(), chi.URLParam(r, "topic"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etagHeader(t.Version))
	writeJSON(w, http.StatusOK, t)
}

func (h *handler) listTopics(w http.ResponseWriter, r *http.Request) {
	ts, err := h.reg.ListTopics(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []schemas.Topic{}
	}
	writeJSON(w, http.StatusOK, list[schemas.Topic]{Value: ts})
}

func (h *handler) deleteTopic(w http.ResponseWriter, r *http.Request) {
	if err := unconditional(r); err != nil {
		h.fail(w, r, err)
		return
	}
	h.deleted(w, r, h.reg.DeleteTopic(r.Context(), chi.URLParam(r, "topic")))
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.reg.Keys(r.Context(), chi.URLParam(r, "topic"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (h *handler) regenerateKey(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req struct {
		KeyName string `json:"keyName"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.fail(w, r, apierr.BadRequest(apierr.CodeInvalidJSON, `the body must be {"keyName":"key1"} or {"keyName":"key2"}: `+err.Error()))
		return
	}
	keys, err := h.reg.RegenerateKey(r.Context(), chi.URLParam(r, "topic"), req.KeyName)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (h *handler) putSubscription(w http.ResponseWriter, r *http.Request) {
	topic, name := chi.URLParam(r, "topic"), chi.URLParam(r, "sub")
	if err := schemas.ValidateTopicName(topic); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := schemas.ValidateSubscriptionName(name); err != nil {
		h.fail(w, r, err)
		return
	}
	only, err := createOnly(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := schemas.DecodeSubscription(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkBodyName(&s.Name, name); err != nil {
		h.fail(w, r, err)
		return
	}
	out, created, err := h.reg.PutSubscription(r.Context(), topic, s, ifMatch(r), only)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etagHeader(out.Version))
	if created {
		w.Header().Set("Location", "/api/topics/"+out.Topic+"/eventSubscriptions/"+out.Name)
	}
	writeJSON(w, putStatus(created), out)
}

func (h *handler) getSubscription(w http.ResponseWriter, r *http.Request) {
	withSecrets := false
	if v := r.URL.Query().Get("secrets"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			h.fail(w, r, apierr.BadRequest("", fmt.Sprintf("query parameter secrets=%q: want true or false", v)))
			return
		}
		withSecrets = b
	}
	s, err := h.reg.GetSubscription(r.Context(), chi.URLParam(r, "topic"), chi.URLParam(r, "sub"), withSecrets)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etagHeader(s.Version))
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs, err := h.reg.ListSubscriptions(r.Context(), chi.URLParam(r, "topic"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[schemas.Subscription]{Value: subs})
}

func (h *handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if err := unconditional(r); err != nil {
		h.fail(w, r, err)
		return
	}
	h.deleted(w, r, h.reg.DeleteSubscription(r.Context(), chi.URLParam(r, "topic"), chi.URLParam(r, "sub")))
}
