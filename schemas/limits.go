package schemas

// Limits and defaults of the topic and subscription resources. Every range
// starts at 1; a zero in an integer field means "not set" and ApplyDefaults
// replaces it. The JSON Schemas (topic.schema.json, subscription.schema.json)
// state the same numbers; a test compares them with these constants.
//
// Where Event Grid documents a limit (names, batching, retry, delivery
// properties, advanced filters) these are its numbers. The rest are
// sluice's choices, marked "sluice:".
const (
	MinTopicNameLength        = 3
	MaxTopicNameLength        = 50
	MinSubscriptionNameLength = 3
	MaxSubscriptionNameLength = 64

	DefaultPartitions      = 4
	MaxPartitions          = 64 // sluice: partitions are sluice's own
	DefaultRetentionInDays = 7
	MaxRetentionInDays     = 3650 // sluice: ten years

	// sluice: Event Grid documents no limit; 2048 is the common
	// browser/proxy URL limit.
	MaxEndpointURLLength = 2048

	DefaultMaxEventsPerBatch             = 1
	MaxMaxEventsPerBatch                 = 5000
	DefaultPreferredBatchSizeInKilobytes = 64
	MaxPreferredBatchSizeInKilobytes     = 1024
	DefaultDeliveryTimeoutInSeconds      = 30
	MaxDeliveryTimeoutInSeconds          = 300

	MaxDeliveryAttributeMappings = 10
	// Event Grid: "each header value shouldn't be greater than 4,096
	// bytes"; sluice counts characters, as JSON Schema's maxLength does.
	MaxDeliveryAttributeValueLength = 4096

	DefaultMaxDeliveryAttempts      = 30
	MaxMaxDeliveryAttempts          = 30
	DefaultEventTimeToLiveInMinutes = 1440
	MaxEventTimeToLiveInMinutes     = 1440

	// sluice: Event Grid documents no limit on includedEventTypes; 25
	// matches its advanced-filter limits.
	MaxIncludedEventTypes = 25
	// sluice: Event Grid documents no limit on subject filters; 512 matches
	// its limit on advanced-filter strings.
	MaxSubjectFilterLength   = 512
	MaxAdvancedFilters       = 25
	MaxAdvancedFilterValues  = 25 // across all advanced filters of a subscription
	MaxAdvancedFilterStrings = 512

	MaxLabels      = 25  // sluice
	MaxLabelLength = 256 // sluice

	// Standard Webhooks: a secret is 24 to 64 random bytes.
	MinSigningSecretBytes = 24
	MaxSigningSecretBytes = 64
	SigningSecretPrefix   = "whsec_"
)

// Names of enumerations, as Event Grid spells them.
const (
	EndpointTypeWebHook = "WebHook"

	DeliveryAttributeStatic  = "Static"
	DeliveryAttributeDynamic = "Dynamic"

	DeadLetterStorageBucket = "StorageBucket"
	DeadLetterNone          = "None"
)

// Advanced filter operators.
const (
	OpNumberIn                  = "NumberIn"
	OpNumberNotIn               = "NumberNotIn"
	OpNumberLessThan            = "NumberLessThan"
	OpNumberGreaterThan         = "NumberGreaterThan"
	OpNumberLessThanOrEquals    = "NumberLessThanOrEquals"
	OpNumberGreaterThanOrEquals = "NumberGreaterThanOrEquals"
	OpNumberInRange             = "NumberInRange"
	OpNumberNotInRange          = "NumberNotInRange"
	OpBoolEquals                = "BoolEquals"
	OpStringContains            = "StringContains"
	OpStringNotContains         = "StringNotContains"
	OpStringBeginsWith          = "StringBeginsWith"
	OpStringNotBeginsWith       = "StringNotBeginsWith"
	OpStringEndsWith            = "StringEndsWith"
	OpStringNotEndsWith         = "StringNotEndsWith"
	OpStringIn                  = "StringIn"
	OpStringNotIn               = "StringNotIn"
	OpIsNullOrUndefined         = "IsNullOrUndefined"
	OpIsNotNull                 = "IsNotNull"
)

// operandKind is the shape of operand an advanced filter operator takes.
type operandKind int

const (
	operandNone         operandKind = iota // neither value nor values
	operandNumber                          // value: a number
	operandBool                            // value: a boolean
	operandNumbers                         // values: numbers
	operandStrings                         // values: strings
	operandNumberRanges                    // values: [low, high] pairs
)

// operators maps each advanced filter operator to its operand shape.
var operators = map[string]operandKind{
	OpNumberIn:                  operandNumbers,
	OpNumberNotIn:               operandNumbers,
	OpNumberLessThan:            operandNumber,
	OpNumberGreaterThan:         operandNumber,
	OpNumberLessThanOrEquals:    operandNumber,
	OpNumberGreaterThanOrEquals: operandNumber,
	OpNumberInRange:             operandNumberRanges,
	OpNumberNotInRange:          operandNumberRanges,
	OpBoolEquals:                operandBool,
	OpStringContains:            operandStrings,
	OpStringNotContains:         operandStrings,
	OpStringBeginsWith:          operandStrings,
	OpStringNotBeginsWith:       operandStrings,
	OpStringEndsWith:            operandStrings,
	OpStringNotEndsWith:         operandStrings,
	OpStringIn:                  operandStrings,
	OpStringNotIn:               operandStrings,
	OpIsNullOrUndefined:         operandNone,
	OpIsNotNull:                 operandNone,
}

// Operators lists the advanced filter operators, in Event Grid's order.
func Operators() []string {
	return []string{
		OpNumberIn, OpNumberNotIn, OpNumberLessThan, OpNumberGreaterThan,
		OpNumberLessThanOrEquals, OpNumberGreaterThanOrEquals, OpNumberInRange,
		OpNumberNotInRange, OpBoolEquals, OpStringContains, OpStringNotContains,
		OpStringBeginsWith, OpStringNotBeginsWith, OpStringEndsWith,
		OpStringNotEndsWith, OpStringIn, OpStringNotIn, OpIsNullOrUndefined,
		OpIsNotNull,
	}
}

var (
	inputSchemas           = []string{CloudEventSchemaV1_0, EventGridSchema}
	deliveryAttributeTypes = []string{DeliveryAttributeStatic, DeliveryAttributeDynamic}
	deadLetterTypes        = []string{DeadLetterStorageBucket, DeadLetterNone}
	// deadLetterSchemes are the store URL schemes objectlog.Open knows.
	deadLetterSchemes = []string{"file", "s3", "gs", "azblob", "mem"}
)

// reservedHeaders are headers sluice sets on every delivery (or that belong
// to the HTTP connection), so a delivery attribute mapping may not set them.
// Compared case-insensitively; reservedHeaderPrefixes likewise.
var (
	reservedHeaders = []string{
		"content-type", "content-length", "host",
		"connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade",
	}
	reservedHeaderPrefixes = []string{"aeg-", "webhook-"}
)
