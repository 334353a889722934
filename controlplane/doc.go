// Package controlplane is the registry of topics and subscriptions, stored
// in the bucket.
//
// Layout (object keys use lower-cased names: Event Grid names are
// case-insensitive, and so are some file systems):
//
//	config/topics/<topic>.json                topic definition, its two keys, its uid
//	config/subscriptions/<topic>/<sub>.json   subscription definition, the uid of its topic
//	config/generation.json                    {"generation":N}: bumped after every change
//	config/admin.json                         {"sha256":"…"}: hash of the admin token
//
// Every write is conditional (create-if-absent or compare-and-swap on the
// object's version), so any number of API processes can share one bucket.
// A resource's etag is its object's version in the store. Topic and
// subscription objects also keep the ids of their last 32 writes, so a
// writer whose acknowledgement was lost can tell that its write landed
// (rather than answer 412 and have the client apply it twice).
//
// Deleting a topic deletes its object first, which hides its subscriptions
// at once: a subscription counts only while its topicUid matches the uid of
// the topic object, which is new each time a topic is created. The
// subscription objects are deleted afterwards; any left behind by a crash are
// invisible and are overwritten or deleted later.
//
// Watchers (Watch) read config/generation.json once per poll and re-read
// everything only when it changed, so an idle cluster costs one GET per
// watcher per poll. Writers bump the generation after their change is
// durable; a writer that loses the compare-and-swap of that bump needs no
// retry, because the bump that beat it happened after its change too.
package controlplane
