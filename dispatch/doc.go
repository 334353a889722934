// Package dispatch delivers the log's events to subscriptions' webhooks,
// with Event Grid's filters, batching, retry schedule and dead-lettering,
// coordinating workers only through the object store.
//
// A unit of work is one partition of one subscription. Its state lives in
// the bucket, next to the log:
//
//	work/_members/<worker>.json                       a worker's heartbeat (only its owner writes it)
//	work/<topic>/<sub>/<p>/lease.json                 holder, epoch, cursor (compare-and-swap only)
//	work/<topic>/<sub>/<p>/retry/<dueMs>-<ulid>.json  failed deliveries waiting for their next attempt
//	deadletter/<topic>/<sub>/<yyyy>/<mm>/<dd>/<hh>/<ulid>.json  what could not be delivered, with why
//
// Leases. Workers list the heartbeats every MemberPoll and spread the units
// between the live ones (rendezvous hashing with bounded loads: every worker
// computes the same assignment from the same view). A lease is
//
//	free     no lease object, or its holder released it
//	held     its holder's heartbeat changed within a TTL, as this worker saw it
//	expired  the holder's heartbeat stood still for a whole TTL on this
//	         worker's own monotonic clock (no two machines' clocks are compared)
//	taken    acquired by compare-and-swap with epoch+1; the old holder's next
//	         write of the lease fails (fencing) and it stops
//
// The holder renews nothing per unit: its heartbeat is the renewal, so an
// idle unit costs no requests. A worker stops starting deliveries once its
// own last successful heartbeat is nearly a TTL old, before anyone can take
// its units (self-fencing); the compare-and-swap catches the rest.
//
// Deliveries. A unit reads its partition from the cursor through the log's
// shared segment cache (subscriptions of one topic on one worker share
// reads), filters, batches and sends with up to Concurrency requests in
// flight. A delivery is
//
//	pending → in flight → delivered | retrying | dead-lettered
//
// and the cursor moves past a range of offsets only once every delivery in
// it is settled: delivered, written to the retry area, or dead-lettered (or
// dropped and counted, when dead-lettering is off). A failing event never
// blocks its partition. The cursor is written at most every CursorEvery, so
// a crash repeats at most that much work plus the requests in flight: the
// duplicate bound of DESIGN.md's invariant 2.
package dispatch
