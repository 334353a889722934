package objectlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Typed errors every Driver returns (wrapped) so that nothing above the
// storage layer needs to know which backend it runs on.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed: a conditional write lost (the object exists for
	// PutIfAbsent, or its version moved for PutIfMatch). Final: re-read and decide.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrConflict: another conditional write on the same key was in flight
	// (S3 409 ConditionalRequestConflict). Retryable.
	ErrConflict = errors.New("conflicting concurrent write")
	// ErrTransient: the store is unavailable or throttling (503 SlowDown,
	// timeouts, 5xx). Retryable. A write that returned ErrTransient may still
	// have been applied.
	ErrTransient = errors.New("transient store error")
	// ErrInvalidKey: the key is not portable across backends.
	ErrInvalidKey = errors.New("invalid object key")
)

// Version identifies one stored version of an object: an S3/Azure ETag, a
// GCS generation, a content hash for the directory and memory stores. It is
// opaque; only equality means anything.
type Version string

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	Version Version // empty in List results: not every backend lists versions cheaply
	ModTime time.Time
}

// ListPage is one page of a prefix listing, in ascending key order.
type ListPage struct {
	Objects []ObjectInfo
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// Driver is the narrow interface a storage backend implements. Drivers
// return the typed errors above (wrapped is fine) and may assume keys were
// validated by Store. A conformance suite (objectlog/storetest) checks that
// every driver behaves the same.
type Driver interface {
	// Get returns the whole object and the version of exactly those bytes.
	Get(ctx context.Context, key string) ([]byte, ObjectInfo, error)
	// GetRange returns length bytes from offset (fewer at the end of the
	// object; length < 0 means to the end).
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat returns the object's metadata, including its version.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Put writes data. cond.IfAbsent makes it create-if-absent;
	// cond.IfMatch makes it compare-and-swap against that version. The
	// write is atomic: readers see the old or the new bytes, never a mix.
	Put(ctx context.Context, key string, data []byte, cond Condition) (Version, error)
	// List returns up to pageSize objects whose key starts with prefix, in
	// ascending key order, starting after the page named by pageToken.
	List(ctx context.Context, prefix, pageToken string, pageSize int) (ListPage, error)
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	Close() error
}

// Condition is the precondition of a Put. The zero value is unconditional.
type Condition struct {
	IfAbsent bool
	IfMatch  Version
}

// MaxKeyLen is the longest key every backend accepts.
const MaxKeyLen = 1024

// MaxKeySegmentLen is the longest segment between slashes every backend
// accepts: MinIO and the directory store keep each segment as a file or
// directory name (NAME_MAX); MinIO answers XMinioInvalidObjectName beyond it.
const MaxKeySegmentLen = 255

// ValidateKey reports whether key is portable across all backends: non-empty,
// at most MaxKeyLen bytes of valid UTF-8, slash-separated segments of at most
// MaxKeySegmentLen bytes that are neither empty, "." nor "..", and no control
// characters. Keys beginning with ".sluice" are reserved for the directory
// store's own bookkeeping.
//
// One more rule cannot be checked key by key: no key may also be a
// "directory" of another (both a/b and a/b/c). MinIO and the directory store
// keep a/b as a file and so cannot hold a/b/c beside it (MinIO accepts the
// second write but hides one of the two from listings).
func ValidateKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.HasPrefix(key, ".sluice"):
		return bad("the .sluice prefix is reserved")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return bad("control characters and backslashes are not allowed")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("segments between slashes must not be empty, '.' or '..'")
		}
		if len(seg) > MaxKeySegmentLen {
			return bad(fmt.Sprintf("a segment between slashes is longer than %d bytes", MaxKeySegmentLen))
		}
	}
	return nil
}
