// Package schemas defines sluice's API resources (topics and event
// subscriptions, with Event Grid's ARM field names) and turns request bodies
// into them: strict JSON decoding (DecodeTopic, DecodeSubscription),
// defaults (ApplyDefaults) and Event Grid's validation rules (Validate), all
// reporting problems as a *ValidationError of JSON-path-named FieldErrors.
// The same rules are published as JSON Schemas (TopicJSONSchema,
// SubscriptionJSONSchema).
//
// A request body goes through
//
//	DecodeX → set Name from the URL → ApplyDefaults → Validate
//
// (Validate accepts unset settings, so the last two may come in either order.)
package schemas
