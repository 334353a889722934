package objectlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// memDriver keeps objects in process memory. gocloud's memblob has no
// compare-and-swap and no version on reads, so the memory backend is ours:
// one mutex makes every operation trivially atomic.
type memDriver struct {
	mu struct {
		sync.Mutex
		objects map[string]memObject
	}
	now func() time.Time
}

type memObject struct {
	data    []byte
	version Version
	mod     time.Time
}

var _ Driver = (*memDriver)(nil)

// NewMemDriver returns an empty in-memory driver.
func NewMemDriver() Driver {
	d := &memDriver{now: time.Now}
	d.mu.objects = map[string]memObject{}
	return d
}

// contentVersion is the version of the directory and memory stores: a hash
// of the content, like S3's ETag for single-part uploads. Identical content
// means an identical version, which is what a CAS needs (ABA on identical
// bytes is the same state).
func contentVersion(data []byte) Version {
	sum := sha256.Sum256(data)
	return Version(hex.EncodeToString(sum[:16]))
}

func (d *memDriver) Get(_ context.Context, key string) ([]byte, ObjectInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.mu.objects[key]
	if !ok {
		return nil, ObjectInfo{}, ErrNotFound
	}
	return append([]byte(nil), o.data...), o.info(key), nil
}

func (o memObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), Version: o.version, ModTime: o.mod}
}

func (d *memDriver) GetRange(_ context.Context, key string, offset, length int64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.mu.objects[key]
	if !ok {
		return nil, ErrNotFound
	}
	return sliceRange(o.data, offset, length), nil
}

// sliceRange returns a copy of data[offset:offset+length], clipped.
func sliceRange(data []byte, offset, length int64) []byte {
	if offset >= int64(len(data)) {
		return []byte{}
	}
	end := int64(len(data))
	if length >= 0 && offset+length < end {
		end = offset + length
	}
	return append([]byte(nil), data[offset:end]...)
}

func (d *memDriver) Stat(_ context.Context, key string) (ObjectInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.mu.objects[key]
	if !ok {
		return ObjectInfo{}, ErrNotFound
	}
	return o.info(key), nil
}

func (d *memDriver) Put(_ context.Context, key string, data []byte, cond Condition) (Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, exists := d.mu.objects[key]
	if cond.IfAbsent && exists {
		return "", fmt.Errorf("%w: object exists", ErrPreconditionFailed)
	}
	if cond.IfMatch != "" {
		if !exists {
			return "", fmt.Errorf("%w: object does not exist", ErrPreconditionFailed)
		}
		if cur.version != cond.IfMatch {
			return "", fmt.Errorf("%w: version is %s, not %s", ErrPreconditionFailed, cur.version, cond.IfMatch)
		}
	}
	o := memObject{data: append([]byte(nil), data...), version: contentVersion(data), mod: d.now()}
	d.mu.objects[key] = o
	return o.version, nil
}

func (d *memDriver) List(_ context.Context, prefix, pageToken string, pageSize int) (ListPage, error) {
	d.mu.Lock()
	keys := make([]string, 0)
	for k := range d.mu.objects {
		if strings.HasPrefix(k, prefix) && k > pageToken {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var page ListPage
	for i, k := range keys {
		if i == pageSize {
			page.NextPageToken = keys[i-1]
			break
		}
		o := d.mu.objects[k]
		page.Objects = append(page.Objects, ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.mod})
	}
	d.mu.Unlock()
	return page, nil
}

func (d *memDriver) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.mu.objects, key)
	return nil
}

func (d *memDriver) Close() error { return nil }
