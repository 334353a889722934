package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// getTopic reads a topic's record. A missing topic is objectlog.ErrNotFound.
func (r *Registry) getTopic(ctx context.Context, name string) (topicRecord, objectlog.Version, error) {
	data, info, err := r.store.Get(ctx, topicKey(name))
	if err != nil {
		return topicRecord{}, "", err
	}
	var rec topicRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return topicRecord{}, "", fmt.Errorf("decode %s: %w", info.Key, err)
	}
	return rec, info.Version, nil
}

// mustGetTopic is getTopic with a 404 that names the topic.
func (r *Registry) mustGetTopic(ctx context.Context, name string) (topicRecord, objectlog.Version, error) {
	rec, v, err := r.getTopic(ctx, name)
	if errors.Is(err, objectlog.ErrNotFound) {
		return rec, v, topicNotFound(name, err)
	}
	return rec, v, err
}

func topicNotFound(name string, cause error) error {
	return apierr.NotFound(fmt.Sprintf("topic %q does not exist", name)).WithCause(cause)
}

// topicOut is the topic as the API shows it: with its etag and endpoint.
func (r *Registry) topicOut(rec topicRecord, v objectlog.Version) schemas.Topic {
	t := rec.Topic
	t.Version = string(v)
	if t.Properties.CreatedAt != nil {
		c := *t.Properties.CreatedAt
		t.Properties.CreatedAt = &c
	}
	t.Properties.Endpoint = ""
	if r.Endpoint != nil {
		t.Properties.Endpoint = r.Endpoint(t.Name)
	}
	return t
}

// PutTopic creates or replaces a topic and reports whether it created it.
// It applies defaults and validates t (callers may have done so already).
//
// ifMatch "" creates or replaces, atomically against concurrent writers;
// a version (an etag) replaces only that version (else 412), and "*"
// replaces only an existing topic. createOnly creates only (409 if the
// topic exists). A new topic gets two keys, a uid and createdAt; a
// replaced one keeps them, and keeps its name's original case. Partitions
// are fixed at creation: zero keeps them, another number is a 400.
func (r *Registry) PutTopic(ctx context.Context, t schemas.Topic, ifMatch string, createOnly bool) (schemas.Topic, bool, error) {
	if err := checkTopicName(t.Name); err != nil {
		return schemas.Topic{}, false, err
	}
	key := topicKey(t.Name)
	for attempt := 1; ; attempt++ {
		cur, curVer, err := r.getTopic(ctx, t.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, objectlog.ErrNotFound) {
			return schemas.Topic{}, false, fmt.Errorf("read topic %q: %w", t.Name, err)
		}
		if err := checkPreconditions("topic", t.Name, exists, curVer, ifMatch, createOnly); err != nil {
			return schemas.Topic{}, false, err
		}

		rec := topicRecord{Topic: t}
		p := &rec.Topic.Properties
		rec.Topic.Version, p.Endpoint = "", ""
		if exists {
			rec.Topic.Name = cur.Topic.Name
			rec.Keys, rec.UID, p.CreatedAt = cur.Keys, cur.UID, cur.Topic.Properties.CreatedAt
			switch was := cur.Topic.Properties.Partitions; {
			case p.Partitions == 0:
				p.Partitions = was
			case p.Partitions != was:
				return schemas.Topic{}, false, apierr.InvalidField("properties.partitions",
					fmt.Sprintf("cannot change after the topic is created (topic %q has %d partitions); delete and recreate the topic to change it", cur.Topic.Name, was))
			}
		} else {
			rec.Keys = schemas.TopicKeys{Key1: schemas.NewTopicKey(), Key2: schemas.NewTopicKey()}
			rec.UID = newUID()
			created := r.now().UTC()
			p.CreatedAt = &created
		}
		p.ProvisioningState = ProvisioningSucceeded
		var writeID string
		rec.Writes, writeID = cur.Writes.add() // cur is empty if !exists
		rec.Topic.ApplyDefaults()
		if err := rec.Topic.Validate(); err != nil {
			return schemas.Topic{}, false, err
		}

		v, err := r.write(ctx, key, exists, curVer, &rec, writeID)
		if err == nil {
			r.changed(ctx)
			return r.topicOut(rec, v), !exists, nil
		}
		if err := writeFailed("topic", t.Name, err, createOnly, ifMatch, attempt); err != nil {
			return schemas.Topic{}, false, err
		}
		if err := pause(ctx, attempt); err != nil {
			return schemas.Topic{}, false, err
		}
	}
}

// GetTopic returns a topic (without its keys).
func (r *Registry) GetTopic(ctx context.Context, name string) (schemas.Topic, error) {
	if err := checkTopicName(name); err != nil {
		return schemas.Topic{}, err
	}
	rec, v, err := r.mustGetTopic(ctx, name)
	if err != nil {
		return schemas.Topic{}, err
	}
	return r.topicOut(rec, v), nil
}

// ListTopics returns every topic (without keys), sorted by name.
func (r *Registry) ListTopics(ctx context.Context) ([]schemas.Topic, error) {
	recs, versions, err := r.readTopics(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.Topic, 0, len(recs))
	for i, rec := range recs {
		out = append(out, r.topicOut(rec, versions[i]))
	}
	return out, nil
}

// readTopics reads every topic record, in key (lower-cased name) order.
func (r *Registry) readTopics(ctx context.Context) ([]topicRecord, []objectlog.Version, error) {
	keys, err := r.listKeys(ctx, topicsPrefix)
	if err != nil {
		return nil, nil, err
	}
	datas, versions, err := r.getAll(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("read topics: %w", err)
	}
	var recs []topicRecord
	var vs []objectlog.Version
	for i, data := range datas {
		if data == nil {
			continue // deleted since listed
		}
		var rec topicRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		recs = append(recs, rec)
		vs = append(vs, versions[i])
	}
	return recs, vs, nil
}

// DeleteTopic deletes a topic and its subscriptions. A missing topic is a
// 404 (wrapping objectlog.ErrNotFound).
func (r *Registry) DeleteTopic(ctx context.Context, name string) error {
	if err := checkTopicName(name); err != nil {
		return err
	}
	rec, _, err := r.getTopic(ctx, name)
	if errors.Is(err, objectlog.ErrNotFound) {
		// Clear subscriptions a crashed delete left behind.
		if err := r.purgeOrphans(ctx, name); err != nil {
			r.Log.Warn().Err(err).Str("topic", name).Msg("controlplane: cannot delete orphan subscriptions")
		}
		// And events a failed delete left behind.
		if _, err := objectlog.DeleteTopicData(ctx, r.store, "", name); err != nil {
			r.Log.Warn().Err(err).Str("topic", name).Msg("controlplane: cannot delete leftover events")
		}
		return topicNotFound(name, err)
	}
	if err != nil {
		return fmt.Errorf("read topic %q: %w", name, err)
	}
	// Deleting the topic object hides its subscriptions at once (their
	// topicUid no longer matches); their objects go next.
	if err := r.store.Delete(ctx, topicKey(name)); err != nil {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	r.changed(ctx)
	ofDeleted := func(topicUID string) (bool, error) { return topicUID == rec.UID, nil }
	if err := r.purgeSubscriptions(ctx, name, ofDeleted); err != nil {
		r.Log.Warn().Err(err).Str("topic", name).Msg("controlplane: topic deleted, but not all its subscription objects (they are invisible)")
	}
	// Its events and delivery state go too, so that a topic created again
	// under this name starts empty.
	if err := r.deleteAll(ctx, "work/"+strings.ToLower(rec.Topic.Name)+"/"); err != nil {
		r.Log.Warn().Err(err).Str("topic", name).Msg("controlplane: topic deleted, but not all its delivery state")
	}
	n, err := objectlog.DeleteTopicData(ctx, r.store, "", rec.Topic.Name)
	if err != nil {
		return fmt.Errorf("topic %q deleted, but %w (delete it again to finish)", name, err)
	}
	r.Log.Info().Str("topic", name).Int("objects", n).Msg("controlplane: topic deleted with its events")
	return nil
}

// purgeSubscriptions deletes the subscription objects under topic whose
// topicUid doomed accepts. doomed runs after the objects were read.
func (r *Registry) purgeSubscriptions(ctx context.Context, topic string, doomed func(topicUID string) (bool, error)) error {
	keys, err := r.listKeys(ctx, subscriptionPrefix(topic))
	if err != nil || len(keys) == 0 {
		return err
	}
	datas, _, err := r.getAll(ctx, keys)
	if err != nil {
		return err
	}
	var errs []error
	for i, data := range datas {
		if data == nil {
			continue
		}
		var rec subscriptionRecord
		_ = json.Unmarshal(data, &rec) // a corrupt object is an orphan too
		ok, err := doomed(rec.TopicUID)
		if err != nil {
			return err
		}
		if ok {
			errs = append(errs, r.store.Delete(ctx, keys[i]))
		}
	}
	return errors.Join(errs...)
}

// purgeOrphans deletes the subscription objects under topic that belong to
// no current topic. The topic is read after the subscriptions, so one
// created meanwhile keeps its new subscriptions.
func (r *Registry) purgeOrphans(ctx context.Context, topic string) error {
	var checked bool
	var uid string
	return r.purgeSubscriptions(ctx, topic, func(topicUID string) (bool, error) {
		if !checked {
			cur, _, err := r.getTopic(ctx, topic)
			switch {
			case err == nil:
				uid = cur.UID
			case !errors.Is(err, objectlog.ErrNotFound):
				return false, err
			}
			checked = true
		}
		return uid == "" || topicUID != uid, nil
	})
}

// Keys returns a topic's two access keys.
func (r *Registry) Keys(ctx context.Context, topic string) (schemas.TopicKeys, error) {
	if err := checkTopicName(topic); err != nil {
		return schemas.TopicKeys{}, err
	}
	rec, _, err := r.mustGetTopic(ctx, topic)
	if err != nil {
		return schemas.TopicKeys{}, err
	}
	return rec.Keys, nil
}

// RegenerateKey replaces one of a topic's keys ("key1" or "key2") with a
// new random one and returns both.
func (r *Registry) RegenerateKey(ctx context.Context, topic, keyName string) (schemas.TopicKeys, error) {
	if err := checkTopicName(topic); err != nil {
		return schemas.TopicKeys{}, err
	}
	if !strings.EqualFold(keyName, "key1") && !strings.EqualFold(keyName, "key2") {
		return schemas.TopicKeys{}, apierr.InvalidField("keyName", fmt.Sprintf("must be \"key1\" or \"key2\", not %q", keyName))
	}
	for attempt := 1; ; attempt++ {
		rec, v, err := r.mustGetTopic(ctx, topic)
		if err != nil {
			return schemas.TopicKeys{}, err
		}
		if strings.EqualFold(keyName, "key1") {
			rec.Keys.Key1 = schemas.NewTopicKey()
		} else {
			rec.Keys.Key2 = schemas.NewTopicKey()
		}
		var writeID string
		rec.Writes, writeID = rec.Writes.add()
		_, err = r.store.PutIfMatch(ctx, topicKey(topic), mustJSON(rec), v)
		if err != nil && lost(err) {
			if now, _, ok := r.landed(ctx, topicKey(topic), writeID); ok {
				if derr := json.Unmarshal(now, &rec); derr != nil {
					return schemas.TopicKeys{}, fmt.Errorf("decode topic %q: %w", topic, derr)
				}
				err = nil
			}
		}
		if err == nil {
			r.changed(ctx)
			return rec.Keys, nil
		}
		if !lost(err) {
			return schemas.TopicKeys{}, fmt.Errorf("write topic %q: %w", topic, err)
		}
		if attempt == maxWriteAttempts {
			return schemas.TopicKeys{}, busyError("topic", topic, err)
		}
		if err := pause(ctx, attempt); err != nil {
			return schemas.TopicKeys{}, err
		}
	}
}
