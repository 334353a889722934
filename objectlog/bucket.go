package objectlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Op names a storage operation, as counted in Stats.
type Op string

// The operations a Store counts. Conditional puts are counted apart from
// plain ones because they are what coordination costs.
const (
	OpGet        Op = "get"
	OpGetRange   Op = "get_range"
	OpStat       Op = "stat"
	OpPut        Op = "put"
	OpPutIfAbsnt Op = "put_if_absent"
	OpPutIfMatch Op = "put_if_match"
	OpList       Op = "list"
	OpDelete     Op = "delete"
)

// Result classifies the outcome of one request.
type Result string

const (
	ResultOK           Result = "ok"
	ResultNotFound     Result = "not_found"
	ResultPrecondition Result = "precondition_failed"
	ResultConflict     Result = "conflict"
	ResultTransient    Result = "transient"
	ResultError        Result = "error"
)

func classify(err error) Result {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrNotFound):
		return ResultNotFound
	case errors.Is(err, ErrPreconditionFailed):
		return ResultPrecondition
	case errors.Is(err, ErrConflict):
		return ResultConflict
	case errors.Is(err, ErrTransient):
		return ResultTransient
	default:
		return ResultError
	}
}

// RetryPolicy says how a Store retries ErrTransient and ErrConflict.
type RetryPolicy struct {
	// MaxAttempts per call, including the first (1 = no retry).
	MaxAttempts int
	// InitialInterval and MaxInterval bound the jittered exponential backoff.
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// DefaultRetryPolicy retries a few times over roughly a second.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 6, InitialInterval: 20 * time.Millisecond, MaxInterval: 500 * time.Millisecond}

// Store is the portable object store every sluice component uses. It wraps
// one Driver, validates keys, retries transient failures, and counts every
// request the driver sees (by operation and result) so that benchmarks and
// metrics can report what the object store will bill.
//
// A conditional Put retried after an ambiguous failure (ErrTransient: the
// write may have landed) can report ErrPreconditionFailed for a write that in
// fact succeeded on the earlier attempt. Callers that must know re-read the
// object and compare its content with what they wrote; the log does.
type Store struct {
	d     Driver
	retry RetryPolicy
	url   string

	counts sync.Map // statKey -> *atomic.Int64
}

type statKey struct {
	op  Op
	res Result
}

// NewStore wraps a driver. Most callers use Open instead.
func NewStore(d Driver, retry RetryPolicy) *Store {
	if retry.MaxAttempts < 1 {
		retry.MaxAttempts = 1
	}
	return &Store{d: d, retry: retry}
}

// Driver returns the underlying driver (for wrappers and tests).
func (s *Store) Driver() Driver { return s.d }

// URL is the URL the store was opened from, with secrets removed.
func (s *Store) URL() string { return s.url }

// Close releases the driver's resources.
func (s *Store) Close() error { return s.d.Close() }

func (s *Store) count(op Op, err error) {
	k := statKey{op, classify(err)}
	v, ok := s.counts.Load(k)
	if !ok {
		v, _ = s.counts.LoadOrStore(k, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Stats is a snapshot of request counts.
type Stats map[Op]map[Result]int64

// Stats returns how many requests the driver has seen, by operation and result.
func (s *Store) Stats() Stats {
	out := Stats{}
	s.counts.Range(func(k, v any) bool {
		sk := k.(statKey)
		if out[sk.op] == nil {
			out[sk.op] = map[Result]int64{}
		}
		out[sk.op][sk.res] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Total is the number of requests of the given operations (all, if none given).
func (st Stats) Total(ops ...Op) int64 {
	var n int64
	for op, byRes := range st {
		if len(ops) > 0 && !containsOp(ops, op) {
			continue
		}
		for _, c := range byRes {
			n += c
		}
	}
	return n
}

// Sub returns st - base, for measuring a window.
func (st Stats) Sub(base Stats) Stats {
	out := Stats{}
	for op, byRes := range st {
		for res, c := range byRes {
			if d := c - base[op][res]; d != 0 {
				if out[op] == nil {
					out[op] = map[Result]int64{}
				}
				out[op][res] = d
			}
		}
	}
	return out
}

// String renders the counts compactly, e.g. "get=10 put_if_absent=4(1 precondition_failed)".
func (st Stats) String() string {
	ops := make([]string, 0, len(st))
	for op := range st {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(' ')
		}
		byRes := st[Op(op)]
		var total int64
		var extra []string
		for res, c := range byRes {
			total += c
			if res != ResultOK {
				extra = append(extra, fmt.Sprintf("%d %s", c, res))
			}
		}
		sort.Strings(extra)
		fmt.Fprintf(&b, "%s=%d", op, total)
		if len(extra) > 0 {
			fmt.Fprintf(&b, "(%s)", strings.Join(extra, ", "))
		}
	}
	return b.String()
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func retryable(err error) bool {
	return errors.Is(err, ErrTransient) || errors.Is(err, ErrConflict)
}

// do runs one logical operation with retries, counting every attempt.
func (s *Store) do(ctx context.Context, op Op, key string, f func() error) error {
	if op != OpList { // List passes no key; an empty key anywhere else is invalid
		if err := ValidateKey(key); err != nil {
			return err
		}
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.retry.InitialInterval
	b.MaxInterval = s.retry.MaxInterval
	b.MaxElapsedTime = 0
	b.Reset()
	var err error
	for attempt := 1; ; attempt++ {
		if err = ctx.Err(); err != nil {
			return err
		}
		err = f()
		s.count(op, err)
		if err == nil || !retryable(err) || attempt >= s.retry.MaxAttempts {
			break
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %q: %w (gave up: %v)", op, key, err, ctx.Err())
		case <-t.C:
		}
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	return nil
}

// Get reads a whole object and the version of exactly those bytes.
func (s *Store) Get(ctx context.Context, key string) (data []byte, info ObjectInfo, err error) {
	err = s.do(ctx, OpGet, key, func() (e error) { data, info, e = s.d.Get(ctx, key); return e })
	return data, info, err
}

// GetRange reads length bytes from offset (length < 0: to the end).
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (data []byte, err error) {
	if offset < 0 {
		return nil, fmt.Errorf("get_range %q: negative offset %d", key, offset)
	}
	err = s.do(ctx, OpGetRange, key, func() (e error) { data, e = s.d.GetRange(ctx, key, offset, length); return e })
	return data, err
}

// Stat returns an object's size, version and modification time.
func (s *Store) Stat(ctx context.Context, key string) (info ObjectInfo, err error) {
	err = s.do(ctx, OpStat, key, func() (e error) { info, e = s.d.Stat(ctx, key); return e })
	return info, err
}

// Put writes an object unconditionally (last writer wins).
func (s *Store) Put(ctx context.Context, key string, data []byte) (v Version, err error) {
	err = s.do(ctx, OpPut, key, func() (e error) { v, e = s.d.Put(ctx, key, data, Condition{}); return e })
	return v, err
}

// PutIfAbsent creates an object only if no object has the key; otherwise it
// fails with ErrPreconditionFailed. Exactly one of many concurrent callers wins.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) (v Version, err error) {
	err = s.do(ctx, OpPutIfAbsnt, key, func() (e error) { v, e = s.d.Put(ctx, key, data, Condition{IfAbsent: true}); return e })
	return v, err
}

// PutIfMatch replaces an object only if its current version is match;
// otherwise it fails with ErrPreconditionFailed (or ErrNotFound on some
// backends if the object is gone; callers treat both as "lost").
func (s *Store) PutIfMatch(ctx context.Context, key string, data []byte, match Version) (v Version, err error) {
	if match == "" {
		return "", fmt.Errorf("put_if_match %q: empty version", key)
	}
	err = s.do(ctx, OpPutIfMatch, key, func() (e error) { v, e = s.d.Put(ctx, key, data, Condition{IfMatch: match}); return e })
	return v, err
}

// DefaultPageSize is the page size List uses when asked for 0.
const DefaultPageSize = 1000

// List returns one page of the objects under prefix, in key order.
func (s *Store) List(ctx context.Context, prefix, pageToken string, pageSize int) (page ListPage, err error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	err = s.do(ctx, OpList, "", func() (e error) { page, e = s.d.List(ctx, prefix, pageToken, pageSize); return e })
	if err != nil {
		return page, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	return page, nil
}

// ListAll calls fn for every object under prefix, page by page, in key
// order. It stops at, and returns, the first error fn returns.
func (s *Store) ListAll(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	token := ""
	for {
		page, err := s.List(ctx, prefix, token, 0)
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		token = page.NextPageToken
	}
}

// Delete removes an object; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, OpDelete, key, func() error { return s.d.Delete(ctx, key) })
}
