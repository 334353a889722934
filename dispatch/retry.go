package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sluicehq/sluice/objectlog"
)

// retryDoc is one object of a unit's retry area: a delivery that failed,
// waiting for its next attempt. Its key starts with the due time in
// milliseconds, so a LIST returns the area in due order and the first key
// not due ends a scan.
//
//	work/<topic>/<sub>/<p>/retry/<dueUnixMs:013>-<ulid>.json
type retryDoc struct {
	Attempts     int          `json:"attempts"`
	FirstAttempt time.Time    `json:"firstAttempt"`
	Due          time.Time    `json:"due"`
	LastOutcome  string       `json:"lastDeliveryOutcome"`
	LastStatus   int          `json:"lastHttpStatusCode,omitempty"`
	LastAttempt  time.Time    `json:"lastDeliveryAttemptTime"`
	Events       []retryEvent `json:"events"`
}

type retryEvent struct {
	Offset    int64           `json:"offset"`
	Published time.Time       `json:"publishTime"`
	Event     json.RawMessage `json:"event"`
}

func retryKey(u unitKey, due time.Time) string {
	return fmt.Sprintf("%s%013d-%s.json", u.retryPrefix(), max(due.UnixMilli(), 0), ulid.Make())
}

// retryDue parses the due time out of a retry key.
func retryDueOf(u unitKey, key string) (time.Time, bool) {
	ms, _, ok := strings.Cut(strings.TrimPrefix(key, u.retryPrefix()), "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

// deliver makes one attempt at delivering events (attempts made before:
// attempts, the first of them at first) and settles the outcome:
// delivered, written to the retry area, or dead-lettered. It returns false
// if the events were not settled (the runner is stopping or lost the
// unit): they are then repeated by whoever works the unit next.
func (r *runner) deliver(ctx context.Context, events []*Event, attempts int, first time.Time, last Outcome) bool {
	if r.lost() || ctx.Err() != nil {
		return false
	}
	// Self-fencing: while this worker's last good heartbeat is too old for
	// it to be sure nobody took the unit, it starts nothing. When the
	// heartbeat recovers it goes on; if the unit was taken meanwhile, its
	// next cursor write fails and it stops.
	for !r.d.members.Valid() {
		if !r.pause(ctx, 20*time.Millisecond) {
			return false
		}
	}
	cfg := r.cfg.Load()
	now := r.d.clock.Now()
	if attempts > 0 && !now.Before(first.Add(cfg.ttl)) {
		return r.deadLetter(ctx, cfg, events, ReasonTTL, attempts, last)
	}
	if err := r.wait(ctx, cfg); err != nil {
		return false
	}
	props := cfg.sub.Properties.Destination.Properties
	o := r.d.sender.Send(ctx, &Delivery{
		URL:            props.EndpointURL,
		Schema:         cfg.sub.Properties.EventDeliverySchema,
		Batched:        cfg.maxEvents > 1,
		Topic:          r.u.Topic,
		Subscription:   r.u.Sub,
		Events:         events,
		Attempt:        attempts,
		Headers:        props.DeliveryAttributeMappings,
		Timeout:        cfg.timeout,
		SigningSecrets: cfg.secrets,
	})
	if ctx.Err() != nil {
		return false // cancelled by a stop or a lost lease: not an attempt
	}
	attempts++
	if first.IsZero() {
		first = now
	}
	labels := []string{r.u.Topic, r.u.Sub}
	m := r.d.metrics
	m.Duration.WithLabelValues(labels...).Observe(float64(o.Duration.Microseconds()) / 1000)
	if o.Result == Delivered {
		m.Success.WithLabelValues(labels...).Add(float64(len(events)))
		return true
	}
	m.AttemptFail.WithLabelValues(labels...).Add(float64(len(events)))
	r.log.Debug().Int("status", o.Status).Str("outcome", o.Description).AnErr("error", o.Err).Int("attempts", attempts).Int("events", len(events)).Msg("dispatch: delivery failed")
	switch {
	case o.Result == Fatal:
		return r.deadLetter(ctx, cfg, events, ReasonNonRetriable, attempts, o)
	case attempts >= cfg.maxAttempts:
		return r.deadLetter(ctx, cfg, events, ReasonMaxDeliveryAttempts, attempts, o)
	}
	due := now.Add(r.d.retryDelay(attempts, o))
	if due.After(first.Add(cfg.ttl)) {
		return r.deadLetter(ctx, cfg, events, ReasonTTL, attempts, o)
	}
	doc := retryDoc{Attempts: attempts, FirstAttempt: first, Due: due, LastOutcome: o.Description, LastStatus: o.Status, LastAttempt: now}
	for _, e := range events {
		doc.Events = append(doc.Events, retryEvent{Offset: e.Offset, Published: e.Published, Event: e.JSON})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		r.log.Error().Err(err).Msg("dispatch: cannot encode a retry")
		return false
	}
	if !r.persist(ctx, "write retry", func(ctx context.Context) error {
		_, err := r.d.store.PutIfAbsent(ctx, retryKey(r.u, due), data)
		return err
	}) {
		return false
	}
	select {
	case r.retryDue <- due:
	default: // the retry loop is busy; it rescans when its current wait ends
	}
	return true
}

// deadLetter writes events to the subscription's dead-letter area, or drops
// and counts them if dead-lettering is off.
func (r *runner) deadLetter(ctx context.Context, cfg *subConfig, events []*Event, reason string, attempts int, o Outcome) bool {
	labels := []string{r.u.Topic, r.u.Sub}
	if cfg.deadLetter == nil {
		r.d.metrics.Dropped.WithLabelValues(labels...).Add(float64(len(events)))
		r.log.Info().Str("reason", reason).Int("events", len(events)).Msg("dispatch: events dropped (dead-lettering is off)")
		return true
	}
	now := r.d.clock.Now()
	dls := make([]DeadLetter, len(events))
	for i, e := range events {
		dls[i] = DeadLetter{Event: e, Reason: reason, DeliveryAttempts: attempts, LastDeliveryOutcome: o.Description, LastHTTPStatusCode: o.Status, LastDeliveryAttemptTime: now}
	}
	ok := r.persist(ctx, "dead-letter", func(ctx context.Context) error {
		_, err := WriteDeadLetters(ctx, cfg.deadLetter, r.u.Topic, r.u.Sub, cfg.sub.Properties.EventDeliverySchema, now, dls)
		return err
	})
	if ok {
		r.d.metrics.DeadLettered.WithLabelValues(labels...).Add(float64(len(events)))
		r.log.Info().Str("reason", reason).Int("events", len(events)).Int("attempts", attempts).Int("status", o.Status).Msg("dispatch: events dead-lettered")
	}
	return ok
}

// persist runs a store write until it succeeds or ctx ends (the Store
// already retried transient errors; this outlasts longer outages, because
// the cursor cannot move past events whose fate is not recorded).
func (r *runner) persist(ctx context.Context, what string, write func(context.Context) error) bool {
	wait := 100 * time.Millisecond
	for {
		err := write(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil || r.lost() {
			return false
		}
		r.log.Warn().Err(err).Str("write", what).Dur("retry_in", wait).Msg("dispatch: store write failed; retrying")
		if !r.pause(ctx, wait) {
			return false
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// retries works the unit's retry area: it lists it when the earliest retry
// it knows of is due (or when it starts), and attempts every due one. An
// idle unit with an empty retry area costs one LIST when it is acquired.
func (r *runner) retries(stopCtx, deliverCtx context.Context) {
	var busy struct {
		sync.Mutex
		keys map[string]bool
	}
	busy.keys = map[string]bool{}
	scan := true
	var next time.Time
	for {
		if scan {
			n, err := r.scanRetries(stopCtx, deliverCtx, func(k string) bool {
				busy.Lock()
				defer busy.Unlock()
				if busy.keys[k] {
					return false
				}
				busy.keys[k] = true
				return true
			}, func(k string) {
				busy.Lock()
				delete(busy.keys, k)
				busy.Unlock()
			})
			if stopCtx.Err() != nil {
				return
			}
			if err != nil {
				r.log.Warn().Err(err).Msg("dispatch: cannot list retries; trying again shortly")
				n = r.d.clock.Now().Add(time.Second)
			}
			next = n
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = r.d.clock.After(max(next.Sub(r.d.clock.Now()), 0))
		}
		select {
		case <-stopCtx.Done():
			return
		case due := <-r.retryDue:
			if next.IsZero() || due.Before(next) {
				next = due
			}
			scan = false
		case <-timer:
			scan = true
		}
	}
}

// scanRetries starts every due retry not already in flight and returns
// the due time of the first one not yet due (zero: none left).
func (r *runner) scanRetries(stopCtx, deliverCtx context.Context, claim func(string) bool, unclaim func(string)) (time.Time, error) {
	token := ""
	for {
		page, err := r.d.store.List(stopCtx, r.u.retryPrefix(), token, 1000)
		if err != nil {
			return time.Time{}, err
		}
		now := r.d.clock.Now()
		for _, o := range page.Objects {
			due, ok := retryDueOf(r.u, o.Key)
			if !ok {
				continue
			}
			if due.After(now) {
				return due, nil
			}
			if !claim(o.Key) {
				continue
			}
			if !r.acquireSlot(stopCtx) {
				unclaim(o.Key)
				return time.Time{}, nil
			}
			r.inflight.Add(1)
			go func(key string) {
				defer r.inflight.Done()
				defer func() { <-r.sem }()
				defer unclaim(key)
				r.retryOne(deliverCtx, key)
			}(o.Key)
		}
		if page.NextPageToken == "" {
			// Everything listed was due: look again soon for what the
			// in-flight ones leave behind.
			if len(page.Objects) > 0 {
				return now.Add(time.Second), nil
			}
			return time.Time{}, nil
		}
		token = page.NextPageToken
	}
}

// retryOne attempts one stored retry and removes it once its events are
// settled again (delivered, rescheduled under a new key, or dead-lettered).
func (r *runner) retryOne(ctx context.Context, key string) {
	data, _, err := r.d.store.Get(ctx, key)
	if errors.Is(err, objectlog.ErrNotFound) {
		return
	}
	if err != nil {
		r.log.Warn().Err(err).Str("key", key).Msg("dispatch: cannot read a retry; it is tried again later")
		return
	}
	var doc retryDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		r.log.Error().Err(err).Str("key", key).Msg("dispatch: damaged retry object left in place")
		return
	}
	events := make([]*Event, 0, len(doc.Events))
	for _, re := range doc.Events {
		e, err := ParseEvent(re.Event)
		if err != nil {
			r.log.Error().Err(err).Str("key", key).Msg("dispatch: damaged event in a retry object skipped")
			continue
		}
		e.Partition, e.Offset, e.Published = r.u.Partition, re.Offset, re.Published
		events = append(events, &e)
	}
	last := Outcome{Description: doc.LastOutcome, Status: doc.LastStatus}
	if len(events) > 0 && !r.deliver(ctx, events, doc.Attempts, doc.FirstAttempt, last) {
		return
	}
	r.persist(ctx, "delete retry", func(ctx context.Context) error {
		err := r.d.store.Delete(ctx, key)
		if errors.Is(err, objectlog.ErrNotFound) {
			return nil
		}
		return err
	})
}
