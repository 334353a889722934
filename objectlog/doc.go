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
//	log/wake.json                                one per log: rewritten before a commit to a quiet partition
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
//
// A Log's readers share a bounded cache of entries and segments, and its
// following readers share one poll per partition tail. A partition quiet for
// IdleAfter is not polled at all: its followers wait for log/wake.json to
// change, which one goroutine per Log reads every WakePoll, so an idle
// deployment costs the same however many partitions it follows. No
// committed event is missed by an idle reader, because a writer makes every
// commit E end at most H = IdleAfter/2 after the start of either a wake
// write or the manifest PUT of its own previous commit E' to the partition:
//
//   - A reader goes idle only after a poll of its next entry that started
//     more than IdleAfter after it last found an entry found nothing.
//   - E follows E' by at most H: a reader waiting for E found E' (or was
//     positioned past it) at some f after E' became visible. Its first poll
//     that may let it sleep starts after f+2H, after E became visible, and
//     finds E. (This is the chain that lets a busy writer skip wake writes.)
//   - E follows a wake write W that started at most H before E became
//     visible. The poll P that let the reader sleep found nothing, so P
//     preceded E and W started after P-H. A reader sleeps only if the wake
//     watcher's first read ended before P-H, so its baseline predates W,
//     and it has seen no change since P-H; so the change W made is seen
//     after the reader sleeps, and wakes it. Woken, it sleeps again only
//     after a poll that started H after the change was seen, which is after
//     E became visible.
//   - A commit that ends more than H after its guarantee (a slow store,
//     retries) is followed by another wake write, started after E is visible.
//
// Only durations are compared across machines, never clock readings; the
// order between a poll and a commit is the store's. A failed wake write
// leaves idle readers to their safety poll, every 5 minutes.
package objectlog
