// Package storetest is the conformance suite every objectlog storage backend
// passes, in the style of gocloud's drivertest: one set of tests, run against
// memory, a local directory and MinIO, so that nothing above objectlog.Store
// needs to know which backend it runs on.
//
// The suite checks what the log relies on: typed not-found, versions that
// name exactly the bytes read or written, create-if-absent and
// compare-and-swap with exactly one winner among goroutines and among
// processes, clean losses on stale versions, ranged reads and prefix listing
// that behave the same everywhere.
//
// A package wires it up with one test per set of backends and the hook the
// multi-process test re-executes the test binary into:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Backend{Name: "mem", Open: ...})
//	}
//
//	func TestStoreConformanceChild(t *testing.T) { storetest.Child(t) }
package storetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// Backend is one storage backend under test.
type Backend struct {
	// Name names the subtests: TestConformance/<Name>/<test>.
	Name string
	// Open returns a fresh, empty store for one test. The suite closes it.
	Open func(t *testing.T) *objectlog.Store
	// SharedURL returns the URL of a fresh, empty store that other processes
	// can open with objectlog.Open. It is nil for backends that cannot be
	// shared between processes (mem).
	SharedURL func(t *testing.T) string
}

// OpenURL opens url for t and closes the store when t ends; any error is fatal.
func OpenURL(t *testing.T, url string) *objectlog.Store {
	t.Helper()
	s, err := objectlog.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", url, err)
		}
	})
	return s
}

// Run runs the suite against b as the subtest t.Run(b.Name, ...).
func Run(t *testing.T, b Backend) {
	t.Run(b.Name, func(t *testing.T) {
		tests := []struct {
			name string
			fn   func(t *testing.T, s *objectlog.Store)
		}{
			{"MissingIsNotFound", testMissing},
			{"RoundTripVersions", testRoundTripVersions},
			{"EmptyAndBinaryObjects", testEmptyAndBinary},
			{"RangedReads", testRangedReads},
			{"PutIfAbsent", testPutIfAbsent},
			{"PutIfAbsentRace", testPutIfAbsentRace},
			{"PutIfMatch", testPutIfMatch},
			{"PutIfMatchMissing", testPutIfMatchMissing},
			{"PutIfMatchRace", testPutIfMatchRace},
			{"PutOverwrites", testPutOverwrites},
			{"Delete", testDelete},
			{"ListPagination", testListPagination},
			{"ListPrefixNotADirectory", testListPrefixNotADirectory},
			{"ListEverything", testListEverything},
			{"LargeObject", testLargeObject},
			{"InvalidKeys", testInvalidKeys},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := b.Open(t)
				tc.fn(t, s)
			})
		}
		t.Run("MultiProcessPutIfAbsent", func(t *testing.T) {
			t.Parallel()
			if b.SharedURL == nil {
				t.Skipf("does not apply to %s: its objects live in one process's memory, so no second process can race on them", b.Name)
			}
			testMultiProcess(t, b.SharedURL(t))
		})
	})
}

// noRetry returns a view of s that makes exactly one request per call, so a
// race test counts what the backend did, not what retries made of it. (A
// conditional put retried after an ambiguous failure may report a loss for a
// write that won; see objectlog.Store.)
func noRetry(s *objectlog.Store) *objectlog.Store {
	return objectlog.NewStore(s.Driver(), objectlog.RetryPolicy{MaxAttempts: 1})
}

// putRetryingConflicts makes one conditional put, repeating it only on
// ErrConflict: S3's 409 says the write was not applied because another
// conditional write on the key was in flight.
func putRetryingConflicts(ctx context.Context, put func() (objectlog.Version, error)) (objectlog.Version, error) {
	for {
		v, err := put()
		if !errors.Is(err, objectlog.ErrConflict) || ctx.Err() != nil {
			return v, err
		}
	}
}

// barrier releases goroutines at once: each spins until all have arrived,
// so they are all running, not waking one by one from a channel, when the
// race starts. With a fast backend (memory) this is what makes a race happen.
type barrier struct{ n atomic.Int32 }

func (b *barrier) wait(n int) {
	b.n.Add(1)
	for b.n.Load() < int32(n) {
		runtime.Gosched()
	}
}

func mustPut(t *testing.T, s *objectlog.Store, key string, data []byte) objectlog.Version {
	t.Helper()
	v, err := s.Put(t.Context(), key, data)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if v == "" {
		t.Fatalf("Put(%q) returned an empty version", key)
	}
	return v
}

// mustGet reads key and checks that Get and Stat agree with each other and,
// if want is not nil, that the content is want.
func mustGet(t *testing.T, s *objectlog.Store, key string, want []byte) ([]byte, objectlog.Version) {
	t.Helper()
	got, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if want != nil && !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, abbrev(got), abbrev(want))
	}
	if info.Key != key || info.Size != int64(len(got)) || info.Version == "" {
		t.Fatalf("Get(%q) info = %+v for %d bytes", key, info, len(got))
	}
	st, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if st.Version != info.Version || st.Size != info.Size || st.Key != key {
		t.Fatalf("Stat(%q) = %+v, Get said %+v", key, st, info)
	}
	if st.ModTime.IsZero() {
		t.Errorf("Stat(%q) has no ModTime", key)
	}
	return got, info.Version
}

func abbrev(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%s... (%d bytes)", b[:64], len(b))
	}
	return string(b)
}

func testMissing(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	const key = "missing/object"
	if _, _, err := s.Get(ctx, key); !errors.Is(err, objectlog.ErrNotFound) {
		t.Errorf("Get of a missing object: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, objectlog.ErrNotFound) {
		t.Errorf("Stat of a missing object: err = %v, want ErrNotFound", err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {5, 0}, {100, 5}} {
		if _, err := s.GetRange(ctx, key, r[0], r[1]); !errors.Is(err, objectlog.ErrNotFound) {
			t.Errorf("GetRange(%d, %d) of a missing object: err = %v, want ErrNotFound", r[0], r[1], err)
		}
	}
	// A missing "directory" is missing too.
	mustPut(t, s, "missing/dir/x", []byte("x"))
	if _, _, err := s.Get(ctx, "missing/dir"); !errors.Is(err, objectlog.ErrNotFound) {
		t.Errorf("Get of a key that is only a prefix of another: err = %v, want ErrNotFound", err)
	}
}

func testRoundTripVersions(t *testing.T, s *objectlog.Store) {
	const key = "rt/object.json"
	v1 := mustPut(t, s, key, []byte(`{"n":1}`))
	_, g1 := mustGet(t, s, key, []byte(`{"n":1}`))
	if g1 != v1 {
		t.Errorf("Get version %q != Put version %q", g1, v1)
	}
	v2 := mustPut(t, s, key, []byte(`{"n":2}`))
	if v2 == v1 {
		t.Errorf("new content kept version %q", v1)
	}
	_, g2 := mustGet(t, s, key, []byte(`{"n":2}`))
	if g2 != v2 {
		t.Errorf("Get version %q != Put version %q", g2, v2)
	}
	v3, err := s.PutIfMatch(t.Context(), key, []byte(`{"n":3}`), v2)
	if err != nil {
		t.Fatalf("PutIfMatch with the current version: %v", err)
	}
	if _, g3 := mustGet(t, s, key, []byte(`{"n":3}`)); g3 != v3 {
		t.Errorf("Get version %q != PutIfMatch version %q", g3, v3)
	}
	v4, err := s.PutIfAbsent(t.Context(), "rt/other", []byte("other"))
	if err != nil {
		t.Fatalf("PutIfAbsent: %v", err)
	}
	if _, g4 := mustGet(t, s, "rt/other", []byte("other")); g4 != v4 {
		t.Errorf("Get version %q != PutIfAbsent version %q", g4, v4)
	}
}

func testEmptyAndBinary(t *testing.T, s *objectlog.Store) {
	v := mustPut(t, s, "bin/empty", nil)
	if got, gv := mustGet(t, s, "bin/empty", []byte{}); len(got) != 0 || gv != v {
		t.Errorf("empty object: got %d bytes version %q, Put said %q", len(got), gv, v)
	}
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i)
	}
	v = mustPut(t, s, "bin/all-bytes", all)
	if _, gv := mustGet(t, s, "bin/all-bytes", all); gv != v {
		t.Errorf("binary object: Get version %q, Put said %q", gv, v)
	}
	// Keys beyond ASCII are portable.
	const uni = "bin/ünï cødé/€ + %20 ~=;"
	v = mustPut(t, s, uni, []byte("u"))
	if _, gv := mustGet(t, s, uni, []byte("u")); gv != v {
		t.Errorf("unicode key: Get version %q, Put said %q", gv, v)
	}
}

func testRangedReads(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	data := []byte(strings.Repeat("0123456789", 10)) // 100 bytes
	mustPut(t, s, "range/obj", data)
	mustPut(t, s, "range/empty", nil)
	cases := []struct {
		key            string
		offset, length int64
		want           []byte
	}{
		{"range/obj", 0, 10, data[:10]},
		{"range/obj", 0, -1, data},
		{"range/obj", 0, 100, data},
		{"range/obj", 37, 20, data[37:57]},
		{"range/obj", 37, -1, data[37:]},
		{"range/obj", 90, 50, data[90:]},
		{"range/obj", 99, 1, data[99:]},
		{"range/obj", 99, -1, data[99:]},
		{"range/obj", 100, 10, nil},
		{"range/obj", 100, -1, nil},
		{"range/obj", 1000, 10, nil},
		{"range/obj", 1000, -1, nil},
		{"range/obj", 0, 0, nil},
		{"range/obj", 50, 0, nil},
		{"range/obj", 200, 0, nil},
		{"range/empty", 0, -1, nil},
		{"range/empty", 0, 5, nil},
		{"range/empty", 0, 0, nil},
		{"range/empty", 3, -1, nil},
	}
	for _, c := range cases {
		got, err := s.GetRange(ctx, c.key, c.offset, c.length)
		if err != nil {
			t.Errorf("GetRange(%s, %d, %d): %v", c.key, c.offset, c.length, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("GetRange(%s, %d, %d) = %q, want %q", c.key, c.offset, c.length, got, c.want)
		}
	}
	if _, err := s.GetRange(ctx, "range/obj", -1, 5); err == nil {
		t.Errorf("GetRange with a negative offset succeeded")
	}
}

func testPutIfAbsent(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	const key = "pia/manifest/00000000000000000001"
	v, err := s.PutIfAbsent(ctx, key, []byte("first"))
	if err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if _, err := s.PutIfAbsent(ctx, key, []byte("second")); !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Fatalf("second PutIfAbsent: err = %v, want ErrPreconditionFailed", err)
	}
	if _, gv := mustGet(t, s, key, []byte("first")); gv != v {
		t.Errorf("version after a lost PutIfAbsent = %q, want %q", gv, v)
	}
	// Identical content loses too: "absent" is about the key, not the bytes.
	if _, err := s.PutIfAbsent(ctx, key, []byte("first")); !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent of identical content: err = %v, want ErrPreconditionFailed", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutIfAbsent(ctx, key, []byte("third")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	mustGet(t, s, key, []byte("third"))
}

// testPutIfAbsentRace: many goroutines create the same key at once, for many
// keys; exactly one wins each, and the stored object is the winner's.
func testPutIfAbsentRace(t *testing.T, s *objectlog.Store) {
	const writers, races = 16, 200
	ctx := t.Context()
	s1 := noRetry(s)
	for r := range races {
		key := fmt.Sprintf("race/pia/%04d", r)
		var (
			wg       sync.WaitGroup
			start    barrier
			versions [writers]objectlog.Version
			errs     [writers]error
		)
		for w := range writers {
			wg.Go(func() {
				start.wait(writers)
				versions[w], errs[w] = putRetryingConflicts(ctx, func() (objectlog.Version, error) {
					return s1.PutIfAbsent(ctx, key, fmt.Appendf(nil, "writer %d of race %d", w, r))
				})
			})
		}
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("race %d: writers %d and %d both won", r, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, objectlog.ErrPreconditionFailed):
				t.Fatalf("race %d: writer %d: %v (want success or ErrPreconditionFailed)", r, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("race %d: no writer won", r)
		}
		if _, v := mustGet(t, s, key, fmt.Appendf(nil, "writer %d of race %d", winner, r)); v != versions[winner] {
			t.Fatalf("race %d: stored version %q, winner was told %q", r, v, versions[winner])
		}
	}
}

func testPutIfMatch(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	const key = "pim/lease"
	v1 := mustPut(t, s, key, []byte("epoch 1"))
	v2, err := s.PutIfMatch(ctx, key, []byte("epoch 2"), v1)
	if err != nil {
		t.Fatalf("PutIfMatch with the current version: %v", err)
	}
	if v2 == v1 {
		t.Fatalf("PutIfMatch of new content returned the old version %q", v1)
	}
	// v1 is stale now.
	if _, err := s.PutIfMatch(ctx, key, []byte("stale writer"), v1); !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Fatalf("PutIfMatch with a stale version: err = %v, want ErrPreconditionFailed", err)
	}
	if _, gv := mustGet(t, s, key, []byte("epoch 2")); gv != v2 {
		t.Fatalf("version after a lost PutIfMatch = %q, want %q", gv, v2)
	}
	// A version that never existed loses the same way.
	for _, bogus := range []objectlog.Version{"not-a-version", "0", "1", `"` + v2 + `"`} {
		if bogus == v2 {
			continue
		}
		if _, err := s.PutIfMatch(ctx, key, []byte("bogus"), bogus); !errors.Is(err, objectlog.ErrPreconditionFailed) {
			t.Errorf("PutIfMatch with version %q: err = %v, want ErrPreconditionFailed", bogus, err)
		}
	}
	// The version a CAS returned is good for the next CAS.
	v3, err := s.PutIfMatch(ctx, key, []byte("epoch 3"), v2)
	if err != nil {
		t.Fatalf("PutIfMatch with the version the previous PutIfMatch returned: %v", err)
	}
	if _, gv := mustGet(t, s, key, []byte("epoch 3")); gv != v3 {
		t.Fatalf("Get version %q, PutIfMatch said %q", gv, v3)
	}
	// An unconditional write moves the version on too.
	mustPut(t, s, key, []byte("overwritten"))
	if _, err := s.PutIfMatch(ctx, key, []byte("late"), v3); !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Fatalf("PutIfMatch after an unconditional Put: err = %v, want ErrPreconditionFailed", err)
	}
	mustGet(t, s, key, []byte("overwritten"))
}

// testPutIfMatchMissing: a compare-and-swap on a key that does not exist
// loses. Backends differ in how they say it (S3 answers 404 to If-Match on a
// missing key, the memory store 412), so both ErrPreconditionFailed and
// ErrNotFound are accepted; callers treat both as "lost, re-read". What
// matters is that nothing is created.
func testPutIfMatchMissing(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	v := mustPut(t, s, "pim-missing/existing", []byte("x"))
	for _, key := range []string{"pim-missing/never", "pim-missing/deleted"} {
		if key == "pim-missing/deleted" {
			mustPut(t, s, key, []byte("x"))
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.PutIfMatch(ctx, key, []byte("y"), v)
		if !errors.Is(err, objectlog.ErrPreconditionFailed) && !errors.Is(err, objectlog.ErrNotFound) {
			t.Errorf("PutIfMatch(%s): err = %v, want ErrPreconditionFailed or ErrNotFound", key, err)
		}
		t.Logf("PutIfMatch on %s reports: %v", key, err)
		if _, _, err := s.Get(ctx, key); !errors.Is(err, objectlog.ErrNotFound) {
			t.Errorf("after a PutIfMatch on missing %s: Get err = %v, want ErrNotFound", key, err)
		}
	}
}

// testPutIfMatchRace: goroutines swap from the same version at once, round
// after round; exactly one wins each round and its version is the next round's.
func testPutIfMatchRace(t *testing.T, s *objectlog.Store) {
	const writers, rounds = 8, 100
	ctx := t.Context()
	s1 := noRetry(s)
	const key = "race/pim/lease"
	cur := mustPut(t, s, key, []byte("round -1"))
	for r := range rounds {
		var (
			wg       sync.WaitGroup
			start    barrier
			versions [writers]objectlog.Version
			errs     [writers]error
		)
		for w := range writers {
			wg.Go(func() {
				start.wait(writers)
				versions[w], errs[w] = putRetryingConflicts(ctx, func() (objectlog.Version, error) {
					return s1.PutIfMatch(ctx, key, fmt.Appendf(nil, "round %d writer %d", r, w), cur)
				})
			})
		}
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both swapped from version %q", r, winner, w, cur)
			case err == nil:
				winner = w
			case !errors.Is(err, objectlog.ErrPreconditionFailed):
				t.Fatalf("round %d: writer %d: %v (want success or ErrPreconditionFailed)", r, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", r)
		}
		_, v := mustGet(t, s, key, fmt.Appendf(nil, "round %d writer %d", r, winner))
		if v != versions[winner] {
			t.Fatalf("round %d: stored version %q, winner was told %q", r, v, versions[winner])
		}
		cur = v
	}
}

func testPutOverwrites(t *testing.T, s *objectlog.Store) {
	mustPut(t, s, "ow/a", []byte("one"))
	mustPut(t, s, "ow/a", []byte("two, longer than one"))
	mustGet(t, s, "ow/a", []byte("two, longer than one"))
	mustPut(t, s, "ow/a", []byte("3"))
	mustGet(t, s, "ow/a", []byte("3"))
}

func testDelete(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	mustPut(t, s, "del/a", []byte("a"))
	mustPut(t, s, "del/b", []byte("b"))
	if err := s.Delete(ctx, "del/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Get(ctx, "del/a"); !errors.Is(err, objectlog.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "del/a"); !errors.Is(err, objectlog.ErrNotFound) {
		t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "del/a"); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(ctx, "del/never/existed"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	mustGet(t, s, "del/b", []byte("b"))
	if got := listAll(t, s, "del/", 0); !slices.Equal(got, []string{"del/b"}) {
		t.Errorf("List after Delete = %q, want [del/b]", got)
	}
}

// listAll lists prefix page by page, checking each page on the way.
func listAll(t *testing.T, s *objectlog.Store, prefix string, pageSize int) []string {
	t.Helper()
	var keys []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("List(%q): more than 10000 pages; is the page token advancing?", prefix)
		}
		page, err := s.List(t.Context(), prefix, token, pageSize)
		if err != nil {
			t.Fatalf("List(%q, page %d): %v", prefix, pages, err)
		}
		if pageSize > 0 && len(page.Objects) > pageSize {
			t.Fatalf("List(%q, pageSize %d) returned %d objects", prefix, pageSize, len(page.Objects))
		}
		for _, o := range page.Objects {
			if !strings.HasPrefix(o.Key, prefix) {
				t.Errorf("List(%q) returned %q", prefix, o.Key)
			}
			keys = append(keys, o.Key)
		}
		if page.NextPageToken == "" {
			return keys
		}
		if page.NextPageToken == token {
			t.Fatalf("List(%q): page token %q did not advance", prefix, token)
		}
		token = page.NextPageToken
	}
}

func testListPagination(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("pfx/k%03d", i)
		want = append(want, k)
	}
	// Write in a scrambled order: listing order must not be creation order.
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(len(want)) {
		mustPut(t, s, want[i], []byte(want[i]))
	}
	for _, k := range []string{"pfw", "pfx0", "pfy/a", "pf", "pfx-/a", "apfx/k000"} {
		mustPut(t, s, k, []byte(k))
	}
	for _, size := range []int{1, 7, 25, 1000} {
		if got := listAll(t, s, "pfx/", size); !slices.Equal(got, want) {
			t.Errorf("List(pfx/, page size %d) = %q\nwant %q", size, got, want)
		}
	}
	// Exactly at a page boundary: the last page may be empty, but nothing repeats.
	page, err := s.List(ctx, "pfx/", "", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 7 || page.NextPageToken == "" {
		t.Fatalf("first page of 7: %d objects, next token %q; want 7 and a token", len(page.Objects), page.NextPageToken)
	}
	for i, o := range page.Objects {
		if o.Size != int64(len(o.Key)) {
			t.Errorf("List: %s has size %d, want %d", o.Key, o.Size, len(o.Key))
		}
		if o.Key != want[i] {
			t.Errorf("List: object %d is %s, want %s", i, o.Key, want[i])
		}
	}
	if got := listAll(t, s, "nothing/here/", 7); len(got) != 0 {
		t.Errorf("List of an empty prefix = %q", got)
	}
}

// testListPrefixNotADirectory: prefixes are byte prefixes of keys, not
// directories, and order is byte order of whole keys ('-' < '/' < '0'), which
// a directory walk does not give by itself.
func testListPrefixNotADirectory(t *testing.T, s *objectlog.Store) {
	keys := []string{"q/a/b1", "q/a/b/c", "q/a/b-x", "q/a/ba/d/e", "q/a/c", "q/a/a", "q/a/B", "q/a/b0/z", "q/ab"}
	for _, k := range keys {
		mustPut(t, s, k, []byte(k))
	}
	cases := map[string][]string{
		"q/a/b":  {"q/a/b-x", "q/a/b/c", "q/a/b0/z", "q/a/b1", "q/a/ba/d/e"},
		"q/a/b/": {"q/a/b/c"},
		"q/a/":   {"q/a/B", "q/a/a", "q/a/b-x", "q/a/b/c", "q/a/b0/z", "q/a/b1", "q/a/ba/d/e", "q/a/c"},
		"q/a":    {"q/a/B", "q/a/a", "q/a/b-x", "q/a/b/c", "q/a/b0/z", "q/a/b1", "q/a/ba/d/e", "q/a/c", "q/ab"},
		"q/a/ba": {"q/a/ba/d/e"},
		"q/a/bz": nil,
	}
	for prefix, want := range cases {
		for _, size := range []int{2, 1000} {
			if got := listAll(t, s, prefix, size); !slices.Equal(got, want) {
				t.Errorf("List(%q, page size %d) = %q\nwant %q", prefix, size, got, want)
			}
		}
	}
}

// testListEverything: the empty prefix lists exactly the objects written, in
// order: no bookkeeping or temporary files of the backend leak into listings.
// (No key here is a "directory" of another: see objectlog.ValidateKey.)
func testListEverything(t *testing.T, s *objectlog.Store) {
	keys := []string{"z", "a/b/c/d/e/f", "a/b-", "a/b/c0", "a/b/c-", "m/1", "m/10", "m/2", "a b"}
	for _, k := range keys {
		mustPut(t, s, k, []byte(k))
	}
	// A conditional write that lost must leave nothing behind either.
	if _, err := s.PutIfAbsent(t.Context(), "z", []byte("again")); !errors.Is(err, objectlog.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent of an existing key: %v", err)
	}
	want := slices.Clone(keys)
	sort.Strings(want)
	if got := listAll(t, s, "", 3); !slices.Equal(got, want) {
		t.Errorf("List(\"\") = %q\nwant %q", got, want)
	}
}

func testLargeObject(t *testing.T, s *objectlog.Store) {
	const size = 8 << 20
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < size; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	const key = "large/seg/01JABCDEF.ndjson.zst"
	v, err := s.PutIfAbsent(t.Context(), key, data)
	if err != nil {
		t.Fatalf("PutIfAbsent of %d bytes: %v", size, err)
	}
	if _, gv := mustGet(t, s, key, data); gv != v {
		t.Errorf("Get version %q, PutIfAbsent said %q", gv, v)
	}
	const off, n = 4<<20 - 3, 1<<20 + 7
	got, err := s.GetRange(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	if !bytes.Equal(got, data[off:off+n]) {
		t.Errorf("GetRange(%d, %d) differs from the bytes written", off, n)
	}
	got, err = s.GetRange(t.Context(), key, size-10, -1)
	if err != nil || !bytes.Equal(got, data[size-10:]) {
		t.Errorf("GetRange of the tail = %x, %v; want %x", got, err, data[size-10:])
	}
}

func testInvalidKeys(t *testing.T, s *objectlog.Store) {
	ctx := t.Context()
	bad := []string{
		"", "/a", "a/", "a//b", "./a", "a/./b", "a/../b", "..", "a\\b", "a\x00b", "a\nb", "a\x7fb",
		".sluice", ".sluice/lock", string([]byte{0xff, 0xfe}), longKey(objectlog.MaxKeyLen + 1),
		"a/" + strings.Repeat("s", objectlog.MaxKeySegmentLen+1) + "/b",
	}
	for _, key := range bad {
		check := func(op string, err error) {
			if !errors.Is(err, objectlog.ErrInvalidKey) {
				t.Errorf("%s(%q): err = %v, want ErrInvalidKey", op, key, err)
			}
		}
		_, _, err := s.Get(ctx, key)
		check("Get", err)
		_, err = s.GetRange(ctx, key, 0, 1)
		check("GetRange", err)
		_, err = s.Stat(ctx, key)
		check("Stat", err)
		_, err = s.Put(ctx, key, []byte("x"))
		check("Put", err)
		_, err = s.PutIfAbsent(ctx, key, []byte("x"))
		check("PutIfAbsent", err)
		_, err = s.PutIfMatch(ctx, key, []byte("x"), "v")
		check("PutIfMatch", err)
		check("Delete", s.Delete(ctx, key))
	}
	if got := listAll(t, s, "", 0); len(got) != 0 {
		t.Errorf("rejected writes left objects: %q", got)
	}
	// The longest valid key works, as does the longest segment.
	for _, key := range []string{longKey(objectlog.MaxKeyLen), "a/" + strings.Repeat("s", objectlog.MaxKeySegmentLen)} {
		mustPut(t, s, key, []byte("long"))
		mustGet(t, s, key, []byte("long"))
	}
}

// longKey returns a key of n bytes made of the longest valid segments.
func longKey(n int) string {
	var segs []string
	for left := n; left > 0; {
		if len(segs) > 0 {
			left-- // the slash
		}
		seg := min(objectlog.MaxKeySegmentLen, left)
		if left-seg == 1 {
			seg-- // leave room for a slash and a byte
		}
		segs = append(segs, strings.Repeat("k", seg))
		left -= seg
	}
	return strings.Join(segs, "/")
}

// The multi-process test re-executes the test binary, running only the
// package's TestStoreConformanceChild, which calls Child.
const (
	// ChildTestName is the test a package using Run must define as
	// func TestStoreConformanceChild(t *testing.T) { storetest.Child(t) }.
	ChildTestName = "TestStoreConformanceChild"

	envChildName = "SLUICE_STORETEST_CHILD"
	envChildURL  = "SLUICE_STORETEST_URL"
	envChildKeys = "SLUICE_STORETEST_KEYS"

	multiProcessKeys    = 300
	childGoroutines     = 4
	childReadyTimeout   = time.Minute
	childProtocolPrefix = "storetest-child: "
)

func childKey(i int) string { return fmt.Sprintf("mp/manifest/%020d", i) }

func childContent(name, key string) []byte { return fmt.Appendf(nil, "written by %s: %s", name, key) }

// testMultiProcess: two processes race create-if-absent on the same keys.
// Each reports the keys it won; every key must have exactly one winner, and
// the stored object must be the one that winner wrote.
func testMultiProcess(t *testing.T, url string) {
	names := []string{"child-a", "child-b"}
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		lines  chan string
		stderr bytes.Buffer
	}
	children := make([]*child, len(names))
	for i, name := range names {
		c := &child{lines: make(chan string, multiProcessKeys+10)}
		c.cmd = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+ChildTestName+"$", "-test.count=1", "-test.timeout=5m")
		c.cmd.Env = append(os.Environ(),
			envChildName+"="+name, envChildURL+"="+url, fmt.Sprintf("%s=%d", envChildKeys, multiProcessKeys))
		c.cmd.Stderr = &c.stderr
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() {
			defer close(c.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), childProtocolPrefix); ok {
					c.lines <- line
				}
			}
		}()
		children[i] = c
	}
	fail := func(c *child, format string, args ...any) {
		t.Helper()
		for _, c := range children {
			_ = c.cmd.Process.Kill()
		}
		for _, c := range children {
			_ = c.cmd.Wait()
		}
		t.Fatalf("%s; child stderr:\n%s", fmt.Sprintf(format, args...), c.stderr.String())
	}
	// Both open the store and warm up, then start together.
	for i, c := range children {
		select {
		case line, ok := <-c.lines:
			if !ok || line != "READY" {
				fail(c, "%s did not report READY (got %q); does the package define %s calling storetest.Child?", names[i], line, ChildTestName)
			}
		case <-time.After(childReadyTimeout):
			fail(c, "%s not ready after %v", names[i], childReadyTimeout)
		}
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "GO\n"); err != nil {
			fail(c, "start child: %v", err)
		}
		c.stdin.Close()
	}
	winnerOf := map[string]string{}
	lost := 0
	for i, c := range children {
		done := false
		for line := range c.lines {
			switch {
			case strings.HasPrefix(line, "WIN "):
				key := strings.TrimPrefix(line, "WIN ")
				if prev, ok := winnerOf[key]; ok {
					fail(c, "%s: both %s and %s won create-if-absent", key, prev, names[i])
				}
				winnerOf[key] = names[i]
			case strings.HasPrefix(line, "DONE "):
				done = true
				var n int
				if _, err := fmt.Sscanf(line, "DONE lost=%d", &n); err != nil {
					fail(c, "%s: bad line %q", names[i], line)
				}
				lost += n
			case strings.HasPrefix(line, "ERROR "):
				fail(c, "%s: %s", names[i], strings.TrimPrefix(line, "ERROR "))
			}
		}
		if err := c.cmd.Wait(); err != nil || !done {
			fail(c, "%s: exit %v, finished=%v", names[i], err, done)
		}
	}
	if len(winnerOf) != multiProcessKeys {
		t.Fatalf("%d keys have a reported winner, want %d (one each)", len(winnerOf), multiProcessKeys)
	}
	// Each key was attempted by both children, so it has exactly one loser too.
	if lost != multiProcessKeys*(len(children)-1) {
		t.Fatalf("children lost %d creates, want %d", lost, multiProcessKeys*(len(children)-1))
	}
	s := OpenURL(t, url)
	wins := map[string]int{}
	for i := range multiProcessKeys {
		key := childKey(i)
		w := winnerOf[key]
		wins[w]++
		mustGet(t, s, key, childContent(w, key))
	}
	t.Logf("wins over %d keys: %v", multiProcessKeys, wins)
}

// Child is the body of the multi-process test's child processes; a package
// that runs the suite calls it from TestStoreConformanceChild. Run normally
// (not as a child) it skips.
func Child(t *testing.T) {
	name := os.Getenv(envChildName)
	if name == "" {
		t.Skip("runs only as a child process of storetest's MultiProcessPutIfAbsent")
	}
	say := func(format string, args ...any) { fmt.Printf(childProtocolPrefix+format+"\n", args...) }
	var n int
	if _, err := fmt.Sscan(os.Getenv(envChildKeys), &n); err != nil {
		say("ERROR bad %s: %v", envChildKeys, err)
		return
	}
	ctx := t.Context()
	st, err := objectlog.Open(ctx, os.Getenv(envChildURL))
	if err != nil {
		say("ERROR open: %v", err)
		return
	}
	defer st.Close()
	s := noRetry(st)
	// Warm up (connections, directories) so both start racing at once.
	if _, err := s.Stat(ctx, "mp/warmup"); err != nil && !errors.Is(err, objectlog.ErrNotFound) {
		say("ERROR warm up: %v", err)
		return
	}
	say("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		say("ERROR waiting for GO: %v", err)
		return
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		lost int
	)
	for g := range childGoroutines {
		wg.Go(func() {
			for i := g; i < n; i += childGoroutines {
				key := childKey(i)
				_, err := putRetryingConflicts(ctx, func() (objectlog.Version, error) {
					return s.PutIfAbsent(ctx, key, childContent(name, key))
				})
				mu.Lock()
				switch {
				case err == nil:
					say("WIN %s", key)
				case errors.Is(err, objectlog.ErrPreconditionFailed):
					lost++
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		say("ERROR %d puts failed, first: %v", len(errs), errs[0])
		return
	}
	say("DONE lost=%d", lost)
}
