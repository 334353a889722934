// Package objectlog is sluice's storage: a portable object store (Store over
// a narrow Driver, with directory, memory and S3/GCS/Azure drivers) and, on
// it, a durable partitioned event log that many processes append to and
// read without any coordinator but the store's conditional writes.
//
// Layout of one partition (see docs/storage-format.md):
//
//	log/<topic>/<p>/seg/<ulid>.jsonl.zst         immutable segments: events as JSON lines, zstd
//	log/<topic>/<p>/manifest/<seq:020>.json      entry N commits one segment (create-if-absent)
//	log/<topic>/<p>/checkpoint/<first>-<firstOffset>-<endOffset>-<maxTimeMs>.json
//	                                             128 entries compacted; the key is the index
//	log/<topic>/<p>/hint.json                    a recent tail (best effort)
//	log/<topic>/<p>/low.json                     the first entry retention kept (compare-and-swap)
//
// A segment's life:
//
//	open       records gathered by a partition's writer (group commit)
//	flushed    the segment PUT succeeded; invisible to readers, an orphan if no entry follows
//	committed  manifest entry N exists: Append returns, readers see the events at their offsets
//	expired    the janitor raised low.json past its range and deleted segment, entry, checkpoint
//
// Writers race for entry N with create-if-absent; a loser reads the winner,
// moves to N+1 and reuses its segment, so offsets stay dense and gap-free.
package objectlog
