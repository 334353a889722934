package schemas

import "time"

// Input and delivery schemas, by Event Grid's names.
const (
	CloudEventSchemaV1_0 = "CloudEventSchemaV1_0"
	EventGridSchema      = "EventGridSchema"
)

// Topic is a topic resource as the API and the store hold it. Field names
// follow Event Grid's ARM resources (Microsoft.EventGrid/topics). Fields
// marked output only are set by sluice; DecodeTopic accepts and drops them.
type Topic struct {
	Name       string          `json:"name"`
	Properties TopicProperties `json:"properties"`
	// Version is the store's version of the object (an ETag), output only;
	// send it back in If-Match to update without losing a concurrent change.
	Version string `json:"etag,omitempty"`
}

// TopicProperties are a topic's settings.
type TopicProperties struct {
	InputSchema       string     `json:"inputSchema"`                 // CloudEventSchemaV1_0 (default) | EventGridSchema
	Partitions        int        `json:"partitions"`                  // 1–64, default 4; fixed after creation
	RetentionInDays   int        `json:"retentionInDays"`             // 1–3650, default 7
	Endpoint          string     `json:"endpoint,omitempty"`          // output only: where to publish
	ProvisioningState string     `json:"provisioningState,omitempty"` // output only
	CreatedAt         *time.Time `json:"createdAt,omitempty"`         // output only
}

// TopicKeys are a topic's two access keys (either is valid, for rotation).
type TopicKeys struct {
	Key1 string `json:"key1"`
	Key2 string `json:"key2"`
}

// Subscription is an event subscription resource
// (Microsoft.EventGrid/eventSubscriptions), scoped to one topic. Fields
// marked output only are set by sluice; DecodeSubscription accepts and drops
// them.
type Subscription struct {
	Name       string                 `json:"name"`
	Topic      string                 `json:"topic,omitempty"` // output only (from the URL)
	Properties SubscriptionProperties `json:"properties"`
	Version    string                 `json:"etag,omitempty"` // output only, as Topic.Version
}

// SubscriptionProperties are a subscription's settings.
type SubscriptionProperties struct {
	Destination           Destination            `json:"destination"`
	Filter                *Filter                `json:"filter,omitempty"`
	EventDeliverySchema   string                 `json:"eventDeliverySchema,omitempty"` // default: the topic's input schema
	RetryPolicy           *RetryPolicy           `json:"retryPolicy,omitempty"`
	DeadLetterDestination *DeadLetterDestination `json:"deadLetterDestination,omitempty"`
	Labels                []string               `json:"labels,omitempty"`
	ExpirationTimeUTC     *time.Time             `json:"expirationTimeUtc,omitempty"`
	// SigningSecret signs deliveries per Standard Webhooks (whsec_<base64>).
	// Generated when absent; shown on create and on GET with ?secrets=true.
	SigningSecret     string `json:"signingSecret,omitempty"`
	ProvisioningState string `json:"provisioningState,omitempty"` // output only
	// ProvisioningMessage says why provisioningState is not Succeeded
	// (a failed or pending endpoint validation). Output only.
	ProvisioningMessage string `json:"provisioningMessage,omitempty"`
}

// Destination is where events are delivered. Only WebHook exists today.
type Destination struct {
	EndpointType string                `json:"endpointType"` // "WebHook"
	Properties   DestinationProperties `json:"properties"`
}

// DestinationProperties of a WebHook destination.
type DestinationProperties struct {
	EndpointURL                   string `json:"endpointUrl"`
	MaxEventsPerBatch             int    `json:"maxEventsPerBatch,omitempty"`             // 1–5000, default 1
	PreferredBatchSizeInKilobytes int    `json:"preferredBatchSizeInKilobytes,omitempty"` // 1–1024, default 64
	// DeliveryTimeoutInSeconds bounds one delivery request (sluice's own
	// setting: Event Grid always waits 30 s).
	DeliveryTimeoutInSeconds int `json:"deliveryTimeoutInSeconds,omitempty"` // 1–300, default 30
	// SkipEndpointValidation delivers without the validation handshake
	// (sluice's own setting, for local development; off by default).
	SkipEndpointValidation    bool                       `json:"skipEndpointValidation,omitempty"`
	DeliveryAttributeMappings []DeliveryAttributeMapping `json:"deliveryAttributeMappings,omitempty"` // at most 10
}

// DeliveryAttributeMapping adds a header to every delivery. Type "Static"
// uses Properties.Value (IsSecret hides it in reads and logs); "Dynamic"
// takes the value from the event attribute named by Properties.SourceField.
type DeliveryAttributeMapping struct {
	Name       string                      `json:"name"`
	Type       string                      `json:"type"` // Static | Dynamic
	Properties DeliveryAttributeProperties `json:"properties"`
}

// DeliveryAttributeProperties of one mapping.
type DeliveryAttributeProperties struct {
	Value       string `json:"value,omitempty"`
	IsSecret    bool   `json:"isSecret,omitempty"`
	SourceField string `json:"sourceField,omitempty"`
}

// Filter decides which events a subscription receives.
type Filter struct {
	IncludedEventTypes              []string         `json:"includedEventTypes,omitempty"`
	SubjectBeginsWith               string           `json:"subjectBeginsWith,omitempty"`
	SubjectEndsWith                 string           `json:"subjectEndsWith,omitempty"`
	IsSubjectCaseSensitive          bool             `json:"isSubjectCaseSensitive,omitempty"`
	EnableAdvancedFilteringOnArrays bool             `json:"enableAdvancedFilteringOnArrays,omitempty"`
	AdvancedFilters                 []AdvancedFilter `json:"advancedFilters,omitempty"`
}

// AdvancedFilter is one Event Grid advanced filter. Which value field is used
// depends on OperatorType: Value (NumberLessThan…, BoolEquals), Values
// (NumberIn, String…), or none (IsNullOrUndefined, IsNotNull); NumberInRange
// and NumberNotInRange use Values as a list of [low, high] pairs.
//
// Operands hold what encoding/json decodes into any: float64 for numbers,
// bool, string, and []any for a [low, high] pair. A subscription that passed
// Validate has exactly the types its operators need.
type AdvancedFilter struct {
	OperatorType string `json:"operatorType"`
	Key          string `json:"key"`
	Value        any    `json:"value,omitempty"`
	Values       []any  `json:"values,omitempty"`
}

// RetryPolicy bounds delivery attempts.
type RetryPolicy struct {
	MaxDeliveryAttempts      int `json:"maxDeliveryAttempts,omitempty"`      // 1–30, default 30
	EventTimeToLiveInMinutes int `json:"eventTimeToLiveInMinutes,omitempty"` // 1–1440, default 1440
}

// DeadLetterDestination says where undeliverable events go. Without one,
// they go to deadletter/<topic>/<subscription>/ in sluice's own store;
// EndpointType "None" turns dead-lettering off (such events are dropped and counted).
type DeadLetterDestination struct {
	EndpointType string                          `json:"endpointType"` // StorageBucket | None
	Properties   DeadLetterDestinationProperties `json:"properties,omitempty"`
}

// DeadLetterDestinationProperties of a StorageBucket dead-letter destination.
type DeadLetterDestinationProperties struct {
	URL string `json:"url,omitempty"` // a store URL, as for --store
}
