package ingest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Topics answers which topics exist and their keys. It serves from the
// registry's latest snapshot (refreshed by Watch, one GET per poll); a name
// the snapshot lacks is read from the registry directly, at most once a
// second per name, so a topic is publishable the moment it is created and a
// flood of requests for unknown topics cannot become a flood of GETs.
type Topics struct {
	reg  *controlplane.Registry
	snap atomic.Pointer[controlplane.Snapshot]
	// OnGone, if set, is called with the name of every topic that a new
	// snapshot shows deleted or re-created, so cached log state is dropped.
	OnGone func(topic string)
	mu     struct {
		sync.Mutex
		direct map[string]directRead
	}
}

type directRead struct {
	at    time.Time
	topic schemas.Topic
	keys  schemas.TopicKeys
	err   error
}

// NewTopics returns a topic source over reg.
func NewTopics(reg *controlplane.Registry) *Topics {
	t := &Topics{reg: reg}
	t.mu.direct = map[string]directRead{}
	return t
}

// Update installs a new snapshot (pass it Watch's callback).
func (t *Topics) Update(s *controlplane.Snapshot) {
	prev := t.snap.Swap(s)
	if prev != nil && t.OnGone != nil {
		for _, old := range prev.Topics() {
			cur, ok := s.Topic(old.Topic.Name)
			if !ok || !sameTime(cur.Topic.Properties.CreatedAt, old.Topic.Properties.CreatedAt) {
				t.OnGone(old.Topic.Name)
			}
		}
	}
	t.mu.Lock()
	clear(t.mu.direct)
	t.mu.Unlock()
}

// Lookup returns the topic and its keys, or an apierr 404.
func (t *Topics) Lookup(ctx context.Context, name string) (schemas.Topic, schemas.TopicKeys, error) {
	if s := t.snap.Load(); s != nil {
		if tc, ok := s.Topic(name); ok {
			return tc.Topic, tc.Keys, nil
		}
	}
	key := strings.ToLower(name)
	t.mu.Lock()
	d, ok := t.mu.direct[key]
	t.mu.Unlock()
	if !ok || time.Since(d.at) > time.Second {
		d = directRead{at: time.Now()}
		d.topic, d.err = t.reg.GetTopic(ctx, name)
		if d.err == nil {
			d.keys, d.err = t.reg.Keys(ctx, name)
		}
		t.mu.Lock()
		t.mu.direct[key] = d
		t.mu.Unlock()
	}
	if d.err != nil {
		var ae *apierr.Error
		if errors.Is(d.err, objectlog.ErrNotFound) || (errors.As(d.err, &ae) && ae.Status == 404) {
			return schemas.Topic{}, schemas.TopicKeys{}, apierr.NotFound("topic " + name + " does not exist (create it with `sluice topic create " + name + "`)")
		}
		return schemas.Topic{}, schemas.TopicKeys{}, d.err
	}
	return d.topic, d.keys, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
