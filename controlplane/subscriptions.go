package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// getSubscription reads a subscription's record. A missing one is
// objectlog.ErrNotFound. The caller checks its TopicUID.
func (r *Registry) getSubscription(ctx context.Context, topic, name string) (subscriptionRecord, objectlog.Version, error) {
	data, info, err := r.store.Get(ctx, subscriptionKey(topic, name))
	if err != nil {
		return subscriptionRecord{}, "", err
	}
	var rec subscriptionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return subscriptionRecord{}, "", fmt.Errorf("decode %s: %w", info.Key, err)
	}
	return rec, info.Version, nil
}

func subscriptionNotFound(topic, name string, cause error) error {
	return apierr.NotFound(fmt.Sprintf("event subscription %q of topic %q does not exist", name, topic)).WithCause(cause)
}

// Redact returns s without its secrets: the signing secret and the values
// of Static delivery attributes marked isSecret are emptied, so they are
// omitted from JSON. (Omitted rather than "<redacted>": a client that GETs,
// edits and PUTs back sends them empty, and PutSubscription keeps the
// stored values for empty secrets.)
func Redact(s schemas.Subscription) schemas.Subscription {
	s.Properties.SigningSecret = ""
	src := s.Properties.Destination.Properties.DeliveryAttributeMappings
	if src == nil {
		return s
	}
	maps := make([]schemas.DeliveryAttributeMapping, len(src))
	copy(maps, src)
	for i := range maps {
		if maps[i].Properties.IsSecret {
			maps[i].Properties.Value = ""
		}
	}
	s.Properties.Destination.Properties.DeliveryAttributeMappings = maps
	return s
}

func subscriptionOut(rec subscriptionRecord, v objectlog.Version, withSecrets bool) schemas.Subscription {
	s := rec.Subscription
	s.Version = string(v)
	if !withSecrets {
		s = Redact(s)
	}
	return s
}

// keepSecrets fills the secrets s leaves empty from cur, the subscription
// it replaces: the signing secret, and secret Static delivery attributes
// matched by name.
func keepSecrets(s *schemas.Subscription, cur schemas.Subscription) {
	if s.Properties.SigningSecret == "" {
		s.Properties.SigningSecret = cur.Properties.SigningSecret
	}
	maps := s.Properties.Destination.Properties.DeliveryAttributeMappings
	if maps == nil {
		return
	}
	maps = append([]schemas.DeliveryAttributeMapping(nil), maps...)
	for i, m := range maps {
		if m.Type != schemas.DeliveryAttributeStatic || !m.Properties.IsSecret || m.Properties.Value != "" {
			continue
		}
		for _, c := range cur.Properties.Destination.Properties.DeliveryAttributeMappings {
			if strings.EqualFold(c.Name, m.Name) && c.Type == schemas.DeliveryAttributeStatic && c.Properties.IsSecret {
				maps[i].Properties.Value = c.Properties.Value
				break
			}
		}
	}
	s.Properties.Destination.Properties.DeliveryAttributeMappings = maps
}

// PutSubscription creates or replaces an event subscription of an existing
// topic (404 otherwise) and reports whether it created it. ifMatch and
// createOnly work as for PutTopic. It applies defaults and validates s.
//
// A new subscription without a signing secret gets one; a replaced one
// keeps its stored secrets wherever s leaves them empty (see Redact). An
// empty eventDeliverySchema becomes the topic's input schema. The result
// shows the secrets only when the subscription was created: that is when a
// generated signing secret must be seen; later, GetSubscription with
// withSecrets shows them.
func (r *Registry) PutSubscription(ctx context.Context, topic string, s schemas.Subscription, ifMatch string, createOnly bool) (schemas.Subscription, bool, error) {
	if err := checkTopicName(topic); err != nil {
		return schemas.Subscription{}, false, err
	}
	if err := checkSubscriptionName(s.Name); err != nil {
		return schemas.Subscription{}, false, err
	}
	trec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return schemas.Subscription{}, false, err
	}
	key := subscriptionKey(topic, s.Name)
	var checked *endpointCheck // the validation handshake runs once per put, not per write attempt
	for attempt := 1; ; attempt++ {
		cur, curVer, err := r.getSubscription(ctx, topic, s.Name)
		found := err == nil
		if err != nil && !errors.Is(err, objectlog.ErrNotFound) {
			return schemas.Subscription{}, false, fmt.Errorf("read subscription %q: %w", s.Name, err)
		}
		// An object of an earlier topic of this name is an orphan: absent.
		exists := found && cur.TopicUID == trec.UID
		if err := checkPreconditions("event subscription", s.Name, exists, curVer, ifMatch, createOnly); err != nil {
			return schemas.Subscription{}, false, err
		}

		rec := subscriptionRecord{Subscription: s, TopicUID: trec.UID}
		var writeID string
		if exists {
			rec.Writes, writeID = cur.Writes.add()
			rec.UID, rec.StartOffsets, rec.Seeks = cur.UID, cur.StartOffsets, cur.Seeks
			rec.PreviousSigningSecret, rec.PreviousSigningSecretExpires = cur.PreviousSigningSecret, cur.PreviousSigningSecretExpires
		} else {
			rec.Writes, writeID = writeIDs(nil).add()
			rec.UID = newUID()
			if rec.StartOffsets, err = r.tails(ctx, trec.Topic.Name, trec.Topic.Properties.Partitions); err != nil {
				return schemas.Subscription{}, false, err
			}
		}
		sub := &rec.Subscription
		sub.Topic, sub.Version = trec.Topic.Name, ""
		if exists {
			sub.Name = cur.Subscription.Name
			keepSecrets(sub, cur.Subscription)
		}
		if sub.Properties.SigningSecret == "" {
			sub.Properties.SigningSecret = schemas.NewSigningSecret()
		}
		sub.ResolveDeliverySchema(trec.Topic.Properties.InputSchema)
		sub.Properties.ProvisioningState = ProvisioningSucceeded
		sub.ApplyDefaults()
		if err := sub.Validate(r.now()); err != nil {
			return schemas.Subscription{}, false, err
		}
		if r.needsValidation(exists, cur, *sub) {
			if checked == nil {
				checked = r.checkEndpoint(ctx, trec.Topic.Name, *sub)
			}
			checked.apply(&rec)
		} else if exists {
			sub.Properties.ProvisioningState = cur.Subscription.Properties.ProvisioningState
			sub.Properties.ProvisioningMessage = cur.Subscription.Properties.ProvisioningMessage
			rec.ValidationCode, rec.ValidationExpires, rec.AllowedRatePerMinute = cur.ValidationCode, cur.ValidationExpires, cur.AllowedRatePerMinute
		}

		v, err := r.write(ctx, key, found, curVer, &rec, writeID)
		if err == nil {
			// A topic deleted (or recreated) while this was written
			// would leave the subscription invisible: say so.
			if again, _, terr := r.getTopic(ctx, topic); terr != nil || again.UID != trec.UID {
				if errors.Is(terr, objectlog.ErrNotFound) || terr == nil {
					_ = r.store.Delete(ctx, key)
					return schemas.Subscription{}, false, apierr.NotFound(fmt.Sprintf("topic %q was deleted while the event subscription was being written", topic)).WithCause(objectlog.ErrNotFound)
				}
				return schemas.Subscription{}, false, fmt.Errorf("re-read topic %q: %w", topic, terr)
			}
			r.changed(ctx)
			return subscriptionOut(rec, v, !exists), !exists, nil
		}
		if err := writeFailed("event subscription", s.Name, err, createOnly, ifMatch, attempt); err != nil {
			return schemas.Subscription{}, false, err
		}
		if err := pause(ctx, attempt); err != nil {
			return schemas.Subscription{}, false, err
		}
	}
}

// GetSubscription returns an event subscription; its secrets only if
// withSecrets (see Redact).
func (r *Registry) GetSubscription(ctx context.Context, topic, name string, withSecrets bool) (schemas.Subscription, error) {
	if err := checkTopicName(topic); err != nil {
		return schemas.Subscription{}, err
	}
	if err := checkSubscriptionName(name); err != nil {
		return schemas.Subscription{}, err
	}
	trec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return schemas.Subscription{}, err
	}
	rec, v, err := r.getSubscription(ctx, topic, name)
	if errors.Is(err, objectlog.ErrNotFound) || (err == nil && rec.TopicUID != trec.UID) {
		return schemas.Subscription{}, subscriptionNotFound(topic, name, objectlog.ErrNotFound)
	}
	if err != nil {
		return schemas.Subscription{}, fmt.Errorf("read subscription %q: %w", name, err)
	}
	return subscriptionOut(rec, v, withSecrets), nil
}

// ListSubscriptions returns the event subscriptions of a topic (404 if
// the topic does not exist), sorted by name, without secrets.
func (r *Registry) ListSubscriptions(ctx context.Context, topic string) ([]schemas.Subscription, error) {
	if err := checkTopicName(topic); err != nil {
		return nil, err
	}
	trec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return nil, err
	}
	recs, versions, err := r.readSubscriptions(ctx, subscriptionPrefix(topic))
	if err != nil {
		return nil, err
	}
	out := []schemas.Subscription{}
	for i, rec := range recs {
		if rec.TopicUID == trec.UID {
			out = append(out, subscriptionOut(rec, versions[i], false))
		}
	}
	return out, nil
}

// readSubscriptions reads every subscription record under prefix, in key order.
func (r *Registry) readSubscriptions(ctx context.Context, prefix string) ([]subscriptionRecord, []objectlog.Version, error) {
	keys, err := r.listKeys(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	datas, versions, err := r.getAll(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("read subscriptions: %w", err)
	}
	var recs []subscriptionRecord
	var vs []objectlog.Version
	for i, data := range datas {
		if data == nil {
			continue
		}
		var rec subscriptionRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		recs = append(recs, rec)
		vs = append(vs, versions[i])
	}
	return recs, vs, nil
}

// DeleteSubscription deletes an event subscription. A missing one (or a
// missing topic) is a 404 wrapping objectlog.ErrNotFound.
func (r *Registry) DeleteSubscription(ctx context.Context, topic, name string) error {
	if err := checkTopicName(topic); err != nil {
		return err
	}
	if err := checkSubscriptionName(name); err != nil {
		return err
	}
	trec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return err
	}
	rec, _, err := r.getSubscription(ctx, topic, name)
	if errors.Is(err, objectlog.ErrNotFound) {
		return subscriptionNotFound(topic, name, err)
	}
	if err != nil {
		return fmt.Errorf("read subscription %q: %w", name, err)
	}
	if err := r.store.Delete(ctx, subscriptionKey(topic, name)); err != nil {
		return fmt.Errorf("delete subscription %q: %w", name, err)
	}
	// Delivery state (cursors, retries) goes with it; dead letters stay,
	// they are the record of what was not delivered.
	if err := r.deleteAll(ctx, WorkPrefix(topic, name)); err != nil {
		r.Log.Warn().Err(err).Str("subscription", name).Msg("controlplane: subscription deleted; some of its delivery state was not")
	}
	if rec.TopicUID != trec.UID {
		return subscriptionNotFound(topic, name, objectlog.ErrNotFound) // was an orphan
	}
	r.changed(ctx)
	return nil
}

// WorkPrefix is where dispatch keeps a subscription's delivery state
// (leases with cursors, the retry area): deleted with the subscription.
func WorkPrefix(topic, sub string) string {
	return "work/" + strings.ToLower(topic) + "/" + strings.ToLower(sub) + "/"
}

// tails returns the offset after each partition's last committed event.
func (r *Registry) tails(ctx context.Context, topic string, partitions int) ([]int64, error) {
	l, err := objectlog.NewLog(r.store, objectlog.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	out := make([]int64, partitions)
	for p := range out {
		e, ok, err := l.Tail(ctx, topic, p)
		if err != nil {
			return nil, fmt.Errorf("find where partition %d of topic %q ends: %w", p, topic, err)
		}
		if ok {
			out[p] = e.EndOffset()
		}
	}
	return out, nil
}

// deleteAll deletes every object under prefix.
func (r *Registry) deleteAll(ctx context.Context, prefix string) error {
	var keys []string
	if err := r.store.ListAll(ctx, prefix, func(o objectlog.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		return err
	}
	for _, k := range keys {
		if err := r.store.Delete(ctx, k); err != nil && !errors.Is(err, objectlog.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Instance returns a subscription with its secrets, the instance data
// dispatch keeps its state by, and its topic's partition count.
func (r *Registry) Instance(ctx context.Context, topic, name string) (schemas.Subscription, SubscriptionInstance, int, error) {
	if err := checkTopicName(topic); err != nil {
		return schemas.Subscription{}, SubscriptionInstance{}, 0, err
	}
	if err := checkSubscriptionName(name); err != nil {
		return schemas.Subscription{}, SubscriptionInstance{}, 0, err
	}
	trec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return schemas.Subscription{}, SubscriptionInstance{}, 0, err
	}
	rec, v, err := r.getSubscription(ctx, topic, name)
	if errors.Is(err, objectlog.ErrNotFound) || (err == nil && rec.TopicUID != trec.UID) {
		return schemas.Subscription{}, SubscriptionInstance{}, 0, subscriptionNotFound(topic, name, objectlog.ErrNotFound)
	}
	if err != nil {
		return schemas.Subscription{}, SubscriptionInstance{}, 0, fmt.Errorf("read subscription %q: %w", name, err)
	}
	inst := instanceOf(rec)
	return subscriptionOut(rec, v, true), inst, trec.Topic.Properties.Partitions, nil
}

// MarkSeek records that a subscription's cursors were moved, so that every
// dispatcher restarts its units from them (at its next Watch poll, or at
// once in this process).
func (r *Registry) MarkSeek(ctx context.Context, topic, name string) error {
	_, err := r.updateSubscription(ctx, topic, name, func(rec *subscriptionRecord) error {
		rec.Seeks++
		return nil
	})
	return err
}

// RotateSigningSecret gives a subscription a new signing secret. The old
// one goes on signing deliveries next to it for overlap, so receivers can
// switch without rejecting a message (Standard Webhooks rotation). It
// returns the new secret and when the old one stops.
func (r *Registry) RotateSigningSecret(ctx context.Context, topic, name string, overlap time.Duration) (string, time.Time, error) {
	if overlap < 0 || overlap > MaxSigningSecretOverlap {
		return "", time.Time{}, apierr.BadRequest("", fmt.Sprintf("overlap %v: must be between 0 and %v", overlap, MaxSigningSecretOverlap))
	}
	rec, err := r.updateSubscription(ctx, topic, name, func(rec *subscriptionRecord) error {
		rec.PreviousSigningSecret = rec.Subscription.Properties.SigningSecret
		rec.PreviousSigningSecretExpires = r.now().Add(overlap).UTC()
		rec.Subscription.Properties.SigningSecret = schemas.NewSigningSecret()
		return nil
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return rec.Subscription.Properties.SigningSecret, rec.PreviousSigningSecretExpires, nil
}

// errUnchanged, from an updateSubscription change, means there is nothing
// to write.
var errUnchanged = errors.New("unchanged")

// updateSubscription applies change to a subscription's stored record and
// writes it back by compare-and-swap, again on a fresh read when it loses a
// race, then tells the watchers. A change that fails stops it unwritten.
func (r *Registry) updateSubscription(ctx context.Context, topic, name string, change func(*subscriptionRecord) error) (subscriptionRecord, error) {
	if _, _, _, err := r.Instance(ctx, topic, name); err != nil {
		return subscriptionRecord{}, err // names checked, and not an orphan of a deleted topic
	}
	key := subscriptionKey(topic, name)
	for attempt := 1; ; attempt++ {
		rec, v, err := r.getSubscription(ctx, topic, name)
		if errors.Is(err, objectlog.ErrNotFound) {
			return rec, subscriptionNotFound(topic, name, err)
		}
		if err != nil {
			return rec, fmt.Errorf("read subscription %q: %w", name, err)
		}
		if err := change(&rec); errors.Is(err, errUnchanged) {
			return rec, nil
		} else if err != nil {
			return rec, err
		}
		var writeID string
		rec.Writes, writeID = rec.Writes.add()
		if _, err = r.write(ctx, key, true, v, &rec, writeID); err == nil {
			r.changed(ctx)
			return rec, nil
		}
		if err := writeFailed("event subscription", name, err, false, "", attempt); err != nil {
			return rec, err
		}
		if err := pause(ctx, attempt); err != nil {
			return rec, err
		}
	}
}

// MaxSigningSecretOverlap bounds how long a rotated-out secret still signs.
const MaxSigningSecretOverlap = 7 * 24 * time.Hour

// endpointCheck is the outcome of one validation handshake.
type endpointCheck struct {
	state, message string
	code           string
	expires        time.Time
	rate           int
}

func (c *endpointCheck) apply(rec *subscriptionRecord) {
	rec.Subscription.Properties.ProvisioningState = c.state
	rec.Subscription.Properties.ProvisioningMessage = c.message
	rec.ValidationCode, rec.ValidationExpires, rec.AllowedRatePerMinute = "", time.Time{}, c.rate
	if c.state == ProvisioningAwaitingManualAction {
		rec.ValidationCode, rec.ValidationExpires = c.code, c.expires
	}
}

// needsValidation: a new subscription, a new endpoint or delivery schema,
// or one whose earlier validation did not succeed, is validated again,
// unless it opts out or no validator is configured.
func (r *Registry) needsValidation(exists bool, cur subscriptionRecord, s schemas.Subscription) bool {
	if r.ValidateEndpoint == nil || s.Properties.Destination.Properties.SkipEndpointValidation {
		return false
	}
	if !exists {
		return true
	}
	c := cur.Subscription.Properties
	return c.ProvisioningState != ProvisioningSucceeded ||
		c.Destination.Properties.SkipEndpointValidation ||
		c.Destination.Properties.EndpointURL != s.Properties.Destination.Properties.EndpointURL ||
		c.EventDeliverySchema != s.Properties.EventDeliverySchema
}

func (r *Registry) checkEndpoint(ctx context.Context, topic string, s schemas.Subscription) *endpointCheck {
	c := &endpointCheck{code: newUID(), expires: r.now().Add(ValidationURLLifetime).UTC()}
	url := ""
	if r.ValidationURL != nil {
		url = r.ValidationURL(topic, s.Name, c.code)
	}
	c.state, c.message, c.rate = r.ValidateEndpoint(ctx, topic, s, c.code, url)
	if c.state == ProvisioningAwaitingManualAction {
		c.message += " (until " + c.expires.Format(time.RFC3339) + ")"
	}
	return c
}

// ConfirmValidation completes a pending endpoint validation: the endpoint
// GETs the validation URL it was sent, which carries the code.
func (r *Registry) ConfirmValidation(ctx context.Context, topic, name, code string) error {
	_, err := r.updateSubscription(ctx, topic, name, func(rec *subscriptionRecord) error {
		switch {
		case rec.Subscription.Properties.ProvisioningState == ProvisioningSucceeded:
			return errUnchanged // confirmed already (a repeated GET)
		case rec.ValidationCode == "":
			return apierr.Conflict(fmt.Sprintf("event subscription %q is not waiting for a validation (state %s): update it to validate again", name, rec.Subscription.Properties.ProvisioningState))
		case subtle.ConstantTimeCompare([]byte(code), []byte(rec.ValidationCode)) != 1:
			return apierr.New(http.StatusForbidden, "Forbidden", "the validation code is not the one sent to the endpoint")
		case r.now().After(rec.ValidationExpires):
			return apierr.BadRequest("", fmt.Sprintf("the validation URL expired at %s: update the subscription to validate again", rec.ValidationExpires.Format(time.RFC3339)))
		}
		rec.Subscription.Properties.ProvisioningState = ProvisioningSucceeded
		rec.Subscription.Properties.ProvisioningMessage = ""
		rec.ValidationCode, rec.ValidationExpires = "", time.Time{}
		return nil
	})
	return err
}
