package controlplane

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Snapshot is every topic, with its keys and subscriptions (secrets
// included), as of one generation. It is immutable: share it freely, and
// do not modify what its methods return.
type Snapshot struct {
	// Generation is the value of config/generation.json read before the
	// snapshot was (0 if it did not exist yet).
	Generation uint64
	topics     []TopicConfig
	byName     map[string]int // lower-cased name -> index in topics
}

// TopicConfig is one topic in a Snapshot.
type TopicConfig struct {
	Topic schemas.Topic
	Keys  schemas.TopicKeys
	// Subscriptions of the topic, sorted by name, with their secrets.
	Subscriptions []schemas.Subscription
	// Instances hold what dispatch needs beyond the resource, index for
	// index with Subscriptions.
	Instances []SubscriptionInstance
}

// SubscriptionInstance is one creation of a subscription.
type SubscriptionInstance struct {
	// UID is new each time the subscription is created ("" for ones
	// created before sluice recorded it).
	UID string
	// StartOffsets are the partitions' tails when it was created (nil:
	// unknown, start at the earliest retained event).
	StartOffsets []int64
	// Seeks changes each time the subscription's cursors are moved.
	Seeks int64
	// PreviousSigningSecret signs deliveries too until
	// PreviousSigningSecretExpires (a rotation's overlap).
	PreviousSigningSecret        string
	PreviousSigningSecretExpires time.Time
	// AllowedRatePerMinute is the endpoint's WebHook-Allowed-Rate (0: any).
	AllowedRatePerMinute int
}

func instanceOf(rec subscriptionRecord) SubscriptionInstance {
	return SubscriptionInstance{UID: rec.UID, StartOffsets: rec.StartOffsets, Seeks: rec.Seeks,
		PreviousSigningSecret: rec.PreviousSigningSecret, PreviousSigningSecretExpires: rec.PreviousSigningSecretExpires,
		AllowedRatePerMinute: rec.AllowedRatePerMinute}
}

// Topics returns every topic, sorted by lower-cased name.
func (s *Snapshot) Topics() []TopicConfig { return s.topics }

// Topic returns the topic of that name (compared case-insensitively).
func (s *Snapshot) Topic(name string) (TopicConfig, bool) {
	i, ok := s.byName[strings.ToLower(name)]
	if !ok {
		return TopicConfig{}, false
	}
	return s.topics[i], true
}

// Snapshot reads every topic and subscription now.
func (r *Registry) Snapshot(ctx context.Context) (*Snapshot, error) {
	gen, _, err := r.readGeneration(ctx)
	if err != nil {
		return nil, err
	}
	return r.load(ctx, gen)
}

// load reads everything. The generation must have been read before: a
// change after that read bumps it again, so the next poll reloads.
func (r *Registry) load(ctx context.Context, gen uint64) (*Snapshot, error) {
	trecs, tversions, err := r.readTopics(ctx)
	if err != nil {
		return nil, err
	}
	srecs, sversions, err := r.readSubscriptions(ctx, subscriptionsPrefix)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Generation: gen, byName: make(map[string]int, len(trecs))}
	uids := make(map[string]int, len(trecs))
	for i, rec := range trecs {
		snap.byName[strings.ToLower(rec.Topic.Name)] = len(snap.topics)
		uids[rec.UID] = len(snap.topics)
		snap.topics = append(snap.topics, TopicConfig{Topic: r.topicOut(rec, tversions[i]), Keys: rec.Keys})
	}
	for i, rec := range srecs {
		ti, ok := uids[rec.TopicUID]
		if !ok {
			continue // an orphan of a deleted topic
		}
		tc := &snap.topics[ti]
		tc.Subscriptions = append(tc.Subscriptions, subscriptionOut(rec, sversions[i], true))
		tc.Instances = append(tc.Instances, instanceOf(rec))
	}
	for _, tc := range snap.topics {
		sort.Sort(bySubscriptionName(tc))
	}
	return snap, nil
}

// Watch calls fn with a Snapshot now and after every change, until ctx is
// done; then it returns nil. Every `every` it reads config/generation.json
// (one GET) and reloads only if it changed, or if ResyncEvery has passed
// since the last load. fn runs on Watch's goroutine; a slow fn delays the
// next poll. A failed poll is logged and retried at the next tick, so fn
// is first called once the store answers.
func (r *Registry) Watch(ctx context.Context, every time.Duration, fn func(*Snapshot)) error {
	if every <= 0 {
		return fmt.Errorf("controlplane: watch interval %v is not positive", every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	return r.watch(ctx, t.C, fn, nil)
}

// watch is Watch with the ticks and an after-poll hook injected (tests).
func (r *Registry) watch(ctx context.Context, ticks <-chan time.Time, fn func(*Snapshot), polled func()) error {
	resync := r.ResyncEvery
	if resync == 0 {
		resync = DefaultResyncEvery
	}
	var (
		loaded   bool
		lastVer  objectlog.Version
		lastLoad time.Time
	)
	poll := func() {
		gen, ver, err := r.readGeneration(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warn().Err(err).Msg("controlplane: watch: cannot read the generation; retrying at the next poll")
			}
			return
		}
		r.seenGeneration.Store(gen)
		due := resync > 0 && r.now().Sub(lastLoad) >= resync
		if loaded && ver == lastVer && !due {
			return
		}
		snap, err := r.load(ctx, gen)
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warn().Err(err).Msg("controlplane: watch: cannot read the configuration; retrying at the next poll")
			}
			return
		}
		loaded, lastVer, lastLoad = true, ver, r.now()
		fn(snap)
	}
	poll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			poll()
			if polled != nil {
				polled()
			}
		}
	}
}

// bySubscriptionName sorts a topic's subscriptions and instances together.
type bySubscriptionName TopicConfig

func (t bySubscriptionName) Len() int { return len(t.Subscriptions) }
func (t bySubscriptionName) Less(a, b int) bool {
	return strings.ToLower(t.Subscriptions[a].Name) < strings.ToLower(t.Subscriptions[b].Name)
}
func (t bySubscriptionName) Swap(a, b int) {
	t.Subscriptions[a], t.Subscriptions[b] = t.Subscriptions[b], t.Subscriptions[a]
	t.Instances[a], t.Instances[b] = t.Instances[b], t.Instances[a]
}
