// Routes on a subscription's delivery state rather than its resource:
// replay (seek), positions, signing-secret rotation and the endpoint
// validation URL.

package adminapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/schemas"
)

// seekRequest is the body of POST …/eventSubscriptions/{sub}/seek: exactly
// one of time (RFC 3339) or position (earliest | latest).
type seekRequest struct {
	Time     string `json:"time,omitempty"`
	Position string `json:"position,omitempty"`
}

const seekUsage = `the body must be {"time":"<RFC 3339>"} or {"position":"earliest"} or {"position":"latest"}`

func (req seekRequest) target() (dispatch.SeekTarget, error) {
	switch {
	case req.Time != "" && req.Position != "":
		return dispatch.SeekTarget{}, apierr.BadRequest(apierr.CodeInvalidJSON, "give time or position, not both: "+seekUsage)
	case req.Time != "":
		t, err := time.Parse(time.RFC3339Nano, req.Time)
		if err != nil {
			return dispatch.SeekTarget{}, apierr.BadRequest(apierr.CodeInvalidJSON, fmt.Sprintf("time %q is not an RFC 3339 time (like 2026-11-25T10:00:00Z)", req.Time))
		}
		return dispatch.SeekTarget{Time: t}, nil
	case req.Position == "earliest":
		return dispatch.SeekTarget{Earliest: true}, nil
	case req.Position == "latest":
		return dispatch.SeekTarget{Latest: true}, nil
	case req.Position != "":
		return dispatch.SeekTarget{}, apierr.BadRequest(apierr.CodeInvalidJSON, fmt.Sprintf("position %q: want earliest or latest", req.Position))
	}
	return dispatch.SeekTarget{}, apierr.BadRequest(apierr.CodeInvalidJSON, seekUsage)
}

// seek moves every partition cursor of one subscription (replay).
func (h *handler) seek(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req seekRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.fail(w, r, apierr.BadRequest(apierr.CodeInvalidJSON, seekUsage+": "+err.Error()))
		return
	}
	target, err := req.target()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sub, inst, parts, ok := h.subscriptionInLog(w, r)
	if !ok {
		return
	}
	pos, err := dispatch.Seek(r.Context(), h.elog, sub.Topic, sub.Name, inst, parts, target)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.reg.MarkSeek(r.Context(), sub.Topic, sub.Name); err != nil {
		h.fail(w, r, fmt.Errorf("cursors moved, but dispatchers were not told (an idle one restarts at its next event): %w", err))
		return
	}
	h.log.Info().Str("topic", sub.Topic).Str("subscription", sub.Name).Str("to", target.String()).Msg("admin api: subscription cursors moved")
	writeJSON(w, http.StatusOK, list[dispatch.PartitionPosition]{Value: pos})
}

// positions reports each partition's cursor, tail and backlog.
func (h *handler) positions(w http.ResponseWriter, r *http.Request) {
	sub, inst, parts, ok := h.subscriptionInLog(w, r)
	if !ok {
		return
	}
	pos, err := dispatch.Positions(r.Context(), h.elog, sub.Topic, sub.Name, inst, parts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[dispatch.PartitionPosition]{Value: pos})
}

// rotateRequest is the body of POST …/eventSubscriptions/{sub}/rotateSigningSecret.
type rotateRequest struct {
	// OverlapMinutes: how long the old secret still signs (default 1440).
	OverlapMinutes *int `json:"overlapMinutes,omitempty"`
}

// rotateSigningSecret gives a subscription a new signing secret; the old
// one keeps signing for the overlap.
func (h *handler) rotateSigningSecret(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req rotateRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			h.fail(w, r, apierr.BadRequest(apierr.CodeInvalidJSON, `the body must be empty or {"overlapMinutes": <minutes>}: `+err.Error()))
			return
		}
	}
	overlap := 24 * time.Hour
	if req.OverlapMinutes != nil {
		overlap = time.Duration(*req.OverlapMinutes) * time.Minute
	}
	secret, until, err := h.reg.RotateSigningSecret(r.Context(), chi.URLParam(r, "topic"), chi.URLParam(r, "sub"), overlap)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"signingSecret":                   secret,
		"previousSigningSecretExpiresUtc": until.Format(time.RFC3339),
	})
}

// confirmValidation completes a pending endpoint validation.
func (h *handler) confirmValidation(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	if code == "" {
		h.fail(w, r, apierr.BadRequest("", "the validation URL lacks its code: use the validationUrl exactly as it was sent"))
		return
	}
	topic, name := chi.URLParam(r, "topic"), chi.URLParam(r, "sub")
	if err := h.reg.ConfirmValidation(r.Context(), topic, name, code); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": fmt.Sprintf("event subscription %s of topic %s is validated: deliveries start", name, topic)})
}

// subscriptionInLog looks up the route's subscription for a route that
// works on its delivery state in the log; false: the answer is written.
func (h *handler) subscriptionInLog(w http.ResponseWriter, r *http.Request) (schemas.Subscription, controlplane.SubscriptionInstance, int, bool) {
	if h.elog == nil {
		h.fail(w, r, apierr.New(http.StatusNotImplemented, "NotImplemented", "this server was started without access to the log"))
		return schemas.Subscription{}, controlplane.SubscriptionInstance{}, 0, false
	}
	sub, inst, parts, err := h.reg.Instance(r.Context(), chi.URLParam(r, "topic"), chi.URLParam(r, "sub"))
	if err != nil {
		h.fail(w, r, err)
		return schemas.Subscription{}, controlplane.SubscriptionInstance{}, 0, false
	}
	return sub, inst, parts, true
}
