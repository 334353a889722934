package objectlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Record is one event as the log stores it: a JSON object on one line
// (CloudEvents structured form for sluice's own topics) and the event's time,
// which the manifest uses for min/max-time seeks.
type Record struct {
	Data []byte
	Time time.Time
}

// Event is a record read back from the log, with its offset and the time
// its manifest entry was committed: when it was published, by the clock of
// the writer (the producer's event time is in Data).
type Event struct {
	Offset    int64
	Data      []byte
	Committed time.Time
}

// ErrChecksum means a segment's bytes do not match its manifest entry.
var ErrChecksum = errors.New("segment checksum mismatch")

// ErrBadRecord: a record cannot be stored as one line of the segment.
var ErrBadRecord = errors.New("invalid record")

// checksum names the algorithm so that the format can change it later.
// SHA-256 rather than a CRC: anyone can check a segment with sha256sum.
func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// segmentEncoder is shared; EncodeAll and DecodeAll are safe for concurrent use.
var (
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	zinitErr error
	zonce    sync.Once
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zonce.Do(func() {
		zenc, zinitErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if zinitErr == nil {
			zdec, zinitErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
		}
	})
	return zenc, zdec, zinitErr
}

// validateRecord checks that a record fits the line format.
func validateRecord(r Record) error {
	if len(r.Data) == 0 {
		return fmt.Errorf("%w: empty", ErrBadRecord)
	}
	if bytes.IndexByte(r.Data, '\n') >= 0 {
		return fmt.Errorf("%w: contains a newline (store compact JSON)", ErrBadRecord)
	}
	return nil
}

// segmentSummary is what encoding a batch learns for its manifest entry.
type segmentSummary struct {
	Events   int
	RawBytes int64
	MinTime  time.Time
	MaxTime  time.Time
}

// encodeSegment renders records as newline-terminated lines, zstd-compressed
// as one frame, so `zstdcat seg | jq` reads it. It returns the lines too
// (raw): what decompressing data gives back.
func encodeSegment(recs []Record) (data, raw []byte, _ segmentSummary, _ error) {
	enc, _, err := zstdCodecs()
	if err != nil {
		return nil, nil, segmentSummary{}, err
	}
	var sum segmentSummary
	n := 0
	for _, r := range recs {
		n += len(r.Data) + 1
	}
	raw = make([]byte, 0, n)
	for i, r := range recs {
		raw = append(raw, r.Data...)
		raw = append(raw, '\n')
		t := r.Time.UTC()
		if i == 0 || t.Before(sum.MinTime) {
			sum.MinTime = t
		}
		if i == 0 || t.After(sum.MaxTime) {
			sum.MaxTime = t
		}
	}
	sum.Events = len(recs)
	sum.RawBytes = int64(len(raw))
	return enc.EncodeAll(raw, make([]byte, 0, len(raw)/3+64)), raw, sum, nil
}

// decodeSegment verifies a segment against its entry and splits it into events.
func decodeSegment(data []byte, e Entry) ([]Event, error) {
	if got := checksum(data); got != e.Checksum {
		return nil, fmt.Errorf("%w: %s has %s, manifest entry %d says %s", ErrChecksum, e.Segment, got, e.Seq, e.Checksum)
	}
	_, dec, err := zstdCodecs()
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(data, make([]byte, 0, e.RawBytes))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", e.Segment, err)
	}
	return splitSegment(raw, e)
}

// splitSegment splits a segment's decompressed lines into events. The
// events share raw (each Data capped at its line), so a decoded segment is
// one buffer; a writer's read cache fill relies on getting from the lines it
// encoded exactly the events a reader decodes from the stored bytes.
func splitSegment(raw []byte, e Entry) ([]Event, error) {
	events := make([]Event, 0, e.Events)
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return nil, fmt.Errorf("segment %s: last line has no newline", e.Segment)
		}
		events = append(events, Event{Offset: e.FirstOffset + int64(len(events)), Data: raw[:i:i], Committed: e.CommittedAt})
		raw = raw[i+1:]
	}
	if len(events) != e.Events {
		return nil, fmt.Errorf("segment %s holds %d events, manifest entry %d says %d", e.Segment, len(events), e.Seq, e.Events)
	}
	return events, nil
}

// Entry is one manifest entry: it commits one segment to a partition. Entry
// N+1 exists only if entry N did when it was created, and offsets are dense:
// FirstOffset(N+1) = FirstOffset(N) + Events(N).
type Entry struct {
	Seq         int64     `json:"seq"`
	Segment     string    `json:"segment"` // key relative to the log's prefix
	FirstOffset int64     `json:"firstOffset"`
	Events      int       `json:"events"`
	Bytes       int64     `json:"bytes"`    // stored (compressed) size
	RawBytes    int64     `json:"rawBytes"` // uncompressed JSON lines
	MinTime     time.Time `json:"minTime"`
	MaxTime     time.Time `json:"maxTime"`
	Checksum    string    `json:"checksum"` // of the stored bytes, "sha256:<hex>"
	Writer      string    `json:"writer"`
	CommittedAt time.Time `json:"committedAt"`
}

// EndOffset is the offset after the entry's last event.
func (e Entry) EndOffset() int64 { return e.FirstOffset + int64(e.Events) }

// Checkpoint compacts CheckpointSpan consecutive entries into one object so a
// new reader does not read them one by one.
type Checkpoint struct {
	FirstSeq int64   `json:"firstSeq"`
	Entries  []Entry `json:"entries"`
}

// CheckpointSpan is how many entries one checkpoint covers: checkpoint k
// covers sequence numbers [k*CheckpointSpan, (k+1)*CheckpointSpan). It is part
// of the storage format.
const CheckpointSpan = 128

// checkpointRef is what a checkpoint's key says about it, so that a LIST of
// checkpoints is an index of the partition without reading any of them.
type checkpointRef struct {
	Key         string
	FirstSeq    int64
	FirstOffset int64
	EndOffset   int64
	MaxTime     time.Time
}

func (c Checkpoint) ref(p partKeys) checkpointRef {
	first, last := c.Entries[0], c.Entries[len(c.Entries)-1]
	var maxT time.Time
	for _, e := range c.Entries {
		if e.MaxTime.After(maxT) {
			maxT = e.MaxTime
		}
	}
	r := checkpointRef{FirstSeq: c.FirstSeq, FirstOffset: first.FirstOffset, EndOffset: last.EndOffset(), MaxTime: maxT}
	r.Key = p.checkpoint(r)
	return r
}

// partKeys builds the keys of one partition:
//
//	<prefix>log/<topic>/<p>/seg/<ulid>.jsonl.zst
//	<prefix>log/<topic>/<p>/manifest/<seq:020>.json
//	<prefix>log/<topic>/<p>/checkpoint/<firstSeq:020>-<firstOffset:020>-<endOffset:020>-<maxTimeMs:013>.json
//	<prefix>log/<topic>/<p>/hint.json   {"seq":N}: a recent tail, best effort
//	<prefix>log/<topic>/<p>/low.json    {"seq":N,"offset":X}: first entry retention kept
type partKeys struct {
	root string // <prefix>log/<topic>/<p>/
}

func newPartKeys(prefix, topic string, partition int) partKeys {
	return partKeys{root: fmt.Sprintf("%slog/%s/%d/", prefix, topic, partition)}
}

func (p partKeys) segment(id string) string { return p.root + "seg/" + id + ".jsonl.zst" }
func (p partKeys) segPrefix() string        { return p.root + "seg/" }
func (p partKeys) entry(seq int64) string   { return fmt.Sprintf("%smanifest/%020d.json", p.root, seq) }
func (p partKeys) ckptPrefix() string       { return p.root + "checkpoint/" }
func (p partKeys) hint() string             { return p.root + "hint.json" }
func (p partKeys) low() string              { return p.root + "low.json" }

func (p partKeys) checkpoint(r checkpointRef) string {
	return fmt.Sprintf("%s%020d-%020d-%020d-%013d.json", p.ckptPrefix(), r.FirstSeq, r.FirstOffset, r.EndOffset, r.MaxTime.UnixMilli())
}

// parseCheckpointKey reads a checkpoint's summary from its key.
func (p partKeys) parseCheckpointKey(key string) (checkpointRef, bool) {
	name, ok := strings.CutPrefix(key, p.ckptPrefix())
	if !ok {
		return checkpointRef{}, false
	}
	name, ok = strings.CutSuffix(name, ".json")
	parts := strings.Split(name, "-")
	if !ok || len(parts) != 4 {
		return checkpointRef{}, false
	}
	var n [4]int64
	for i, s := range parts {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return checkpointRef{}, false
		}
		n[i] = v
	}
	return checkpointRef{Key: key, FirstSeq: n[0], FirstOffset: n[1], EndOffset: n[2], MaxTime: time.UnixMilli(n[3]).UTC()}, true
}

type hintDoc struct {
	Seq int64 `json:"seq"`
}

type lowDoc struct {
	Seq    int64 `json:"seq"`
	Offset int64 `json:"offset"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return b
}
