package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Object keys of the registry.
const (
	topicsPrefix        = "config/topics/"
	subscriptionsPrefix = "config/subscriptions/"
	generationKey       = "config/generation.json"
	adminKey            = "config/admin.json"
	objectSuffix        = ".json"
)

const (
	// ProvisioningAwaitingManualAction: the endpoint took the validation
	// event but did not answer with the code; it may confirm at the
	// validation URL. ProvisioningFailed: the validation failed.
	ProvisioningAwaitingManualAction = "AwaitingManualAction"
	ProvisioningFailed               = "Failed"
	// ValidationURLLifetime is how long a validation URL works.
	ValidationURLLifetime = 5 * time.Minute
	// ProvisioningSucceeded is the provisioningState of every stored
	// resource: sluice has no asynchronous provisioning.
	ProvisioningSucceeded = "Succeeded"
	// maxWriteAttempts bounds the read-then-conditional-write loops of
	// unconditional updates that lose races to other writers.
	maxWriteAttempts = 8
	// DefaultResyncEvery is how often Watch re-reads everything even when
	// the generation did not change.
	DefaultResyncEvery = 5 * time.Minute
	// getConcurrency bounds parallel GETs when reading many resources.
	getConcurrency = 16
)

// Registry reads and writes topics, subscriptions and the admin token in a
// store. It is safe for concurrent use, within and across processes.
type Registry struct {
	store *objectlog.Store
	now   func() time.Time

	// Endpoint, when set, builds the publish endpoint shown as a topic's
	// properties.endpoint. It is applied on every read and never stored,
	// so a changed public URL shows at once.
	Endpoint func(topic string) string
	// Log receives what the registry cannot return: failed polls of Watch,
	// generation bumps that failed after a change was made. The zero value
	// discards.
	Log zerolog.Logger
	// OnChange, when set, runs after every change this registry makes, so
	// that a process serving both the admin API and ingest applies its own
	// changes at once instead of at the next Watch poll (other processes
	// see them within their poll interval).
	OnChange func(ctx context.Context)
	// ResyncEvery makes Watch re-read everything this often even if the
	// generation did not change: the safety net for a writer that stopped
	// between its change and its generation bump. Zero means
	// DefaultResyncEvery; negative, never.
	ResyncEvery time.Duration
	// ValidateEndpoint, when set, runs the endpoint validation handshake
	// of a subscription being created, or whose endpoint or delivery
	// schema changes: it is given the validation code and the URL the
	// endpoint may GET instead of answering with the code, and returns the
	// provisioning state, why if it is not Succeeded, and the rate the
	// endpoint allows (requests per minute; 0: any). Nil: subscriptions
	// are Succeeded at once.
	ValidateEndpoint func(ctx context.Context, topic string, s schemas.Subscription, code, url string) (state, message string, ratePerMinute int)
	// ValidationURL is where an endpoint confirms a pending validation.
	ValidationURL func(topic, sub, code string) string

	// seenGeneration is the generation Watch read last; a change
	// invalidates the cached admin token hash without a request of its own.
	seenGeneration atomic.Uint64
	admin          struct {
		sync.Mutex
		// hash of the admin token; nil when none is set.
		hash []byte
		// fetched is when hash was read; zero means never.
		fetched time.Time
		// generation is seenGeneration when hash was read.
		generation uint64
	}
}

// New returns a registry over store. now is the wall clock (nil: time.Now).
func New(store *objectlog.Store, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{store: store, now: now}
}

// topicRecord is the stored form of a topic.
type topicRecord struct {
	Topic schemas.Topic     `json:"topic"`
	Keys  schemas.TopicKeys `json:"keys"`
	// UID is new each time the topic is created; subscriptions carry it.
	UID string `json:"uid"`
	// Writes are the ids of the last writes, newest first (see writeIDs).
	Writes writeIDs `json:"writes"`
}

// subscriptionRecord is the stored form of a subscription.
type subscriptionRecord struct {
	Subscription schemas.Subscription `json:"subscription"`
	TopicUID     string               `json:"topicUid"`
	// UID is new each time the subscription is created: delivery state
	// (cursors, retries) of an earlier subscription of the same name is
	// recognised by it and not inherited.
	UID string `json:"uid,omitempty"`
	// StartOffsets are each partition's tail when the subscription was
	// created: delivery starts there, so a subscription receives the
	// events published after it was made, as in Event Grid.
	StartOffsets []int64 `json:"startOffsets,omitempty"`
	// Seeks counts the times its cursors were moved (sluice sub seek):
	// dispatchers seeing it change restart the subscription's units from
	// the moved cursors.
	Seeks int64 `json:"seeks,omitempty"`
	// PreviousSigningSecret still signs deliveries, next to the current
	// one, until PreviousSigningSecretExpires: a rotation's overlap.
	PreviousSigningSecret        string    `json:"previousSigningSecret,omitempty"`
	PreviousSigningSecretExpires time.Time `json:"previousSigningSecretExpires,omitzero"`
	// ValidationCode is the code a pending endpoint validation waits for
	// at the validation URL, until ValidationExpires.
	ValidationCode    string    `json:"validationCode,omitempty"`
	ValidationExpires time.Time `json:"validationExpires,omitzero"`
	// AllowedRatePerMinute is the endpoint's WebHook-Allowed-Rate (0: any).
	AllowedRatePerMinute int      `json:"allowedRatePerMinute,omitempty"`
	Writes               writeIDs `json:"writes"` // see topicRecord
}

// writeIDs are the ids of a record's last writes, newest first. Every write
// adds a new one, which makes its bytes unique (so a version, a content
// hash on some stores, never repeats), and lets a writer whose
// acknowledgement was lost tell that its write landed even after a few
// later writes by others (see landed).
type writeIDs []string

// keptWriteIDs bounds writeIDs. A lost acknowledgement followed by more
// writes than this before the writer re-reads is reported as a lost race.
const keptWriteIDs = 32

// add returns w with a new id first, and the id.
func (w writeIDs) add() (writeIDs, string) {
	id := newWriteID()
	out := make(writeIDs, 0, keptWriteIDs)
	out = append(out, id)
	return append(out, w[:min(len(w), keptWriteIDs-1)]...), id
}

type generationRecord struct {
	Generation uint64    `json:"generation"`
	ChangedAt  time.Time `json:"changedAt"`
}

func topicKey(name string) string { return topicsPrefix + strings.ToLower(name) + objectSuffix }

func subscriptionPrefix(topic string) string {
	return subscriptionsPrefix + strings.ToLower(topic) + "/"
}

func subscriptionKey(topic, name string) string {
	return subscriptionPrefix(topic) + strings.ToLower(name) + objectSuffix
}

// nameError makes a name validation error a 400 whatever its type.
func nameError(field string, err error) error {
	if err == nil {
		return nil
	}
	var ve *schemas.ValidationError
	var ae *apierr.Error
	if errors.As(err, &ve) || errors.As(err, &ae) {
		return err
	}
	return apierr.InvalidField(field, err.Error())
}

func checkTopicName(name string) error {
	return nameError("name", schemas.ValidateTopicName(name))
}

func checkSubscriptionName(name string) error {
	return nameError("name", schemas.ValidateSubscriptionName(name))
}

// lost reports whether a conditional write lost to another writer.
// PutIfMatch on a deleted object answers ErrNotFound on some backends.
func lost(err error) bool {
	return errors.Is(err, objectlog.ErrPreconditionFailed) || errors.Is(err, objectlog.ErrNotFound)
}

// landed reports whether the write with id landed at key though the store
// reported a lost race: a conditional write retried after an ambiguous
// failure (a lost acknowledgement) fails against its own first attempt.
// It returns the object now there, which may hold later writes too.
func (r *Registry) landed(ctx context.Context, key, id string) ([]byte, objectlog.Version, bool) {
	data, info, err := r.store.Get(ctx, key)
	if err != nil {
		return nil, "", false
	}
	var rec struct {
		Writes writeIDs `json:"writes"`
	}
	if json.Unmarshal(data, &rec) != nil || !slices.Contains(rec.Writes, id) {
		return nil, "", false
	}
	return data, info.Version, true
}

// checkPreconditions applies If-Match (ifMatch: a version or "*") and
// create-only to the current state of a resource.
func checkPreconditions(kind, name string, exists bool, cur objectlog.Version, ifMatch string, createOnly bool) error {
	switch {
	case createOnly && exists:
		return apierr.Conflict(fmt.Sprintf("%s %q already exists", kind, name))
	case ifMatch != "" && !exists:
		return apierr.PreconditionFailed(fmt.Sprintf("%s %q does not exist, so If-Match %q cannot match", kind, name, ifMatch)).
			WithCause(objectlog.ErrPreconditionFailed)
	case ifMatch != "" && ifMatch != "*" && objectlog.Version(ifMatch) != cur:
		return staleError(kind, name, ifMatch)
	}
	return nil
}

func staleError(kind, name, ifMatch string) error {
	return apierr.PreconditionFailed(fmt.Sprintf("%s %q has changed since etag %q was read; read it again and retry with its new etag", kind, name, ifMatch)).
		WithCause(objectlog.ErrPreconditionFailed)
}

// pause waits a little before retrying a lost race, with jitter so that
// the racers spread out.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(mrand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func busyError(kind, name string, err error) error {
	return apierr.Unavailable(fmt.Sprintf("%s %q is being changed by many requests at once; retry", kind, name), time.Second).
		WithCause(fmt.Errorf("%w: %w", objectlog.ErrConflict, err))
}

// write stores *rec at key: compare-and-swap against curVer if the object
// exists, create-if-absent if not. A write reported lost that in fact landed
// (an ambiguous retry; writeID is among the object's recent writes) counts
// as done, and *rec becomes what is stored.
func (r *Registry) write(ctx context.Context, key string, exists bool, curVer objectlog.Version, rec any, writeID string) (objectlog.Version, error) {
	data := mustJSON(rec)
	var v objectlog.Version
	var err error
	if exists {
		v, err = r.store.PutIfMatch(ctx, key, data, curVer)
	} else {
		v, err = r.store.PutIfAbsent(ctx, key, data)
	}
	if err != nil && lost(err) {
		if now, lv, ok := r.landed(ctx, key, writeID); ok {
			if derr := json.Unmarshal(now, rec); derr != nil {
				return "", fmt.Errorf("decode %s: %w", key, derr)
			}
			return lv, nil
		}
	}
	return v, err
}

// writeFailed says what a failed write of a resource means: the error to
// return, or nil when the write lost a race it may simply try again.
func writeFailed(kind, name string, err error, createOnly bool, ifMatch string, attempt int) error {
	switch {
	case !lost(err):
		return fmt.Errorf("write %s %q: %w", kind, name, err)
	case createOnly:
		return apierr.Conflict(fmt.Sprintf("%s %q already exists", kind, name)).WithCause(err)
	case ifMatch != "":
		return staleError(kind, name, ifMatch)
	case attempt == maxWriteAttempts:
		return busyError(kind, name, err)
	}
	return nil
}

// changed bumps the generation after a change. A failure is logged, not
// returned: the change itself is durable, and Watch's periodic resync
// will pick it up.
func (r *Registry) changed(ctx context.Context) {
	if err := r.bump(ctx); err != nil {
		r.Log.Warn().Err(err).Msg("controlplane: change made but generation not bumped; watchers see it at their next resync")
	}
	if r.OnChange != nil {
		r.OnChange(ctx)
	}
}

// bump increments config/generation.json by compare-and-swap. Losing the
// swap is success: the winner wrote after this process read the generation,
// which was after this process's change.
func (r *Registry) bump(ctx context.Context) error {
	data, info, err := r.store.Get(ctx, generationKey)
	var g generationRecord
	switch {
	case errors.Is(err, objectlog.ErrNotFound):
		g.Generation = 1
		g.ChangedAt = r.now().UTC()
		_, err = r.store.PutIfAbsent(ctx, generationKey, mustJSON(g))
	case err != nil:
		return fmt.Errorf("read generation: %w", err)
	default:
		// A corrupt counter restarts at 1: watchers compare for
		// inequality, not order.
		_ = json.Unmarshal(data, &g)
		g.Generation++
		g.ChangedAt = r.now().UTC()
		_, err = r.store.PutIfMatch(ctx, generationKey, mustJSON(g), info.Version)
	}
	if err != nil && !lost(err) {
		return fmt.Errorf("bump generation: %w", err)
	}
	return nil
}

// readGeneration is the one GET a watcher makes per poll. A missing object
// is generation 0 with an empty version.
func (r *Registry) readGeneration(ctx context.Context) (uint64, objectlog.Version, error) {
	data, info, err := r.store.Get(ctx, generationKey)
	if errors.Is(err, objectlog.ErrNotFound) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read generation: %w", err)
	}
	var g generationRecord
	_ = json.Unmarshal(data, &g) // a corrupt counter still has a version
	return g.Generation, info.Version, nil
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("controlplane: marshal %T: %v", v, err))
	}
	return data
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func newWriteID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// getAll reads the objects at keys, getConcurrency at a time. Objects
// deleted since they were listed are skipped (nil data).
func (r *Registry) getAll(ctx context.Context, keys []string) ([][]byte, []objectlog.Version, error) {
	datas := make([][]byte, len(keys))
	versions := make([]objectlog.Version, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, getConcurrency)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, info, err := r.store.Get(ctx, k)
			if errors.Is(err, objectlog.ErrNotFound) {
				return
			}
			datas[i], versions[i], errs[i] = data, info.Version, err
		}()
	}
	wg.Wait()
	return datas, versions, errors.Join(errs...)
}

// listKeys returns the keys of the .json objects under prefix, in order.
func (r *Registry) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := r.store.ListAll(ctx, prefix, func(o objectlog.ObjectInfo) error {
		if strings.HasSuffix(o.Key, objectSuffix) {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}
