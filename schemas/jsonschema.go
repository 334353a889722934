package schemas

import _ "embed"

// JSON Schemas (draft 2020-12) of the API's request bodies, for clients and
// documentation. They state the limits that Validate enforces (a test keeps
// them in step) except the few a JSON Schema cannot express, which each
// schema's description lists.
var (
	//go:embed topic.schema.json
	TopicJSONSchema []byte
	//go:embed subscription.schema.json
	SubscriptionJSONSchema []byte
)
