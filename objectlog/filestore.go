package objectlog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fileDriver stores each object as one file under a root directory, safely
// shared by any number of processes on one machine.
//
//	<root>/<key>                  the object's bytes; never written in place
//	<root>/.sluice/tmp/…          fully written, fsync'd files waiting to be linked
//	<root>/.sluice/locks/<nn>     flock(2) stripes serialising CAS, put and delete
//
// Create-if-absent is link(2) of a complete temp file: atomic, and it fails
// with EEXIST for every loser, in this process or another. Compare-and-swap,
// unconditional put and delete hold the key's stripe lock (an in-process
// mutex, then flock, which also excludes other processes), check the version
// (a hash of the content, like S3's ETag) and rename(2) a temp file over the
// key. Readers never need a lock: a key's file is always either the old or
// the new complete file. After every link/rename the directory is fsync'd, so
// an acknowledged write survives a crash of the machine, not only of the
// process.
//
// Limitation shared with every directory-backed store: a key cannot also be a
// "directory" of other keys ("a/b" and "a/b/c" cannot both exist). sluice's own
// layout never needs that.
type fileDriver struct {
	root    string
	tmpDir  string
	lockDir string
	stripes [lockStripes]sync.Mutex
}

const lockStripes = 256

var _ Driver = (*fileDriver)(nil)

// NewFileDriver opens (creating if needed) a directory store rooted at dir.
func NewFileDriver(dir string) (Driver, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store %q: %w", dir, err)
	}
	d := &fileDriver{root: root, tmpDir: filepath.Join(root, ".sluice", "tmp"), lockDir: filepath.Join(root, ".sluice", "locks")}
	for _, p := range []string{d.tmpDir, d.lockDir} {
		if err := mkdirAllSync(p); err != nil {
			return nil, fmt.Errorf("file store %q: %w", root, err)
		}
	}
	d.removeStaleTemps(time.Hour)
	return d, nil
}

// removeStaleTemps deletes temp files left by crashed writers. Only old ones:
// a young temp file may belong to a live writer in another process.
func (d *fileDriver) removeStaleTemps(age time.Duration) {
	entries, err := os.ReadDir(d.tmpDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(d.tmpDir, e.Name()))
		}
	}
}

func (d *fileDriver) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

func mapFileErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	default:
		return err
	}
}

func (d *fileDriver) Get(_ context.Context, key string) ([]byte, ObjectInfo, error) {
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, ObjectInfo{}, mapFileErr(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	if st.IsDir() {
		return nil, ObjectInfo{}, fmt.Errorf("%w: %s is a directory", ErrNotFound, key)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return data, ObjectInfo{Key: key, Size: int64(len(data)), Version: contentVersion(data), ModTime: st.ModTime()}, nil
}

func (d *fileDriver) GetRange(_ context.Context, key string, offset, length int64) ([]byte, error) {
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, mapFileErr(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory", ErrNotFound, key)
	}
	if offset >= st.Size() {
		return []byte{}, nil
	}
	n := st.Size() - offset
	if length >= 0 && length < n {
		n = length
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

func (d *fileDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	// The version is a content hash, so Stat reads the object. sluice stats
	// only small objects; a sidecar would make writes non-atomic.
	_, info, err := d.Get(ctx, key)
	return info, err
}

func (d *fileDriver) Put(_ context.Context, key string, data []byte, cond Condition) (Version, error) {
	tmp, err := d.writeTemp(data)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp) // after a link the key keeps its own name; after a rename this is a no-op
	dst := d.path(key)
	if err := mkdirAllSync(filepath.Dir(dst)); err != nil {
		return "", err
	}
	if cond.IfAbsent {
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("%w: object exists", ErrPreconditionFailed)
			}
			return "", err
		}
	} else {
		unlock, err := d.lock(key)
		if err != nil {
			return "", err
		}
		defer unlock()
		if cond.IfMatch != "" {
			cur, err := os.ReadFile(dst)
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%w: object does not exist", ErrPreconditionFailed)
			} else if err != nil {
				return "", mapFileErr(err)
			}
			if v := contentVersion(cur); v != cond.IfMatch {
				return "", fmt.Errorf("%w: version is %s, not %s", ErrPreconditionFailed, v, cond.IfMatch)
			}
		}
		if err := os.Rename(tmp, dst); err != nil {
			return "", err
		}
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return "", err
	}
	return contentVersion(data), nil
}

// writeTemp writes data to a new fsync'd file in the temp directory.
func (d *fileDriver) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(d.tmpDir, "put-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write temp file: %w", err)
	}
	return name, nil
}

// lock takes the key's stripe: first an in-process mutex (so only one
// goroutine per stripe blocks an OS thread in flock), then flock(2) on the
// stripe's lock file, which excludes other processes.
func (d *fileDriver) lock(key string) (func(), error) {
	h := fnv.New32a()
	h.Write([]byte(key))
	i := h.Sum32() % lockStripes
	mu := &d.stripes[i]
	mu.Lock()
	f, err := os.OpenFile(filepath.Join(d.lockDir, fmt.Sprintf("%02x", i)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		mu.Unlock()
		return nil, fmt.Errorf("flock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		mu.Unlock()
	}, nil
}

func (d *fileDriver) List(_ context.Context, prefix, pageToken string, pageSize int) (ListPage, error) {
	// Walk only the directory the prefix lies in, then sort full keys: a
	// directory walk's order is not the byte order of keys ("a-c" < "a/b").
	base := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		base = d.path(prefix[:i])
	}
	var objs []ObjectInfo
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking, or the prefix's directory does not exist
			}
			return err
		}
		rel, _ := filepath.Rel(d.root, p)
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			if key == ".sluice" {
				return fs.SkipDir
			}
			// Prune directories that cannot hold keys with the prefix.
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || key <= pageToken {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		objs = append(objs, ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return ListPage{}, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	var page ListPage
	if len(objs) > pageSize {
		objs = objs[:pageSize]
		page.NextPageToken = objs[pageSize-1].Key
	}
	page.Objects = objs
	return page, nil
}

func (d *fileDriver) Delete(_ context.Context, key string) error {
	unlock, err := d.lock(key)
	if err != nil {
		return err
	}
	defer unlock()
	p := d.path(key)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(p))
}

func (d *fileDriver) Close() error { return nil }

// mkdirAllSync is os.MkdirAll that also fsyncs the parent of every directory
// it creates, so that a new directory's entry is as durable as the file
// linked into it.
func mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // created concurrently
		}
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
