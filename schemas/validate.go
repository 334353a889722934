package schemas

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one problem with one field of a resource.
type FieldError struct {
	// Field is the JSON path from the document root, such as
	// "properties.filter.advancedFilters[3].values[1]"; empty for the
	// document as a whole.
	Field string
	// Message states the rule that was broken, e.g. "at most 25 values
	// across all advanced filters". It never repeats secret values.
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem found with a resource, by decoding
// (DecodeTopic, DecodeSubscription) or validation (Validate, Validate*Name).
// The API answers it with 400 and one detail per FieldError.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// checker collects FieldErrors.
type checker struct {
	errs []FieldError
}

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: c.errs}
}

// optionalRange checks an integer whose zero value means "use the default".
func (c *checker) optionalRange(field string, v, max int) {
	if v != 0 && (v < 1 || v > max) {
		c.add(field, "must be between 1 and %d", max)
	}
}

func (c *checker) maxLength(field, s string, max int) {
	if n := utf8.RuneCountInString(s); n > max {
		c.add(field, "must be at most %d characters (found %d)", max, n)
	}
}

// quoteList renders values as `"a", "b" or "c"`.
func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// ValidateTopicName checks a topic name: 3 to 50 letters, digits and '-'.
// The error is a *ValidationError with field "name".
func ValidateTopicName(name string) error {
	var c checker
	c.name(name, MinTopicNameLength, MaxTopicNameLength)
	return c.err()
}

// ValidateSubscriptionName checks an event subscription name: 3 to 64
// letters, digits and '-'. The error is a *ValidationError with field "name".
func ValidateSubscriptionName(name string) error {
	var c checker
	c.name(name, MinSubscriptionNameLength, MaxSubscriptionNameLength)
	return c.err()
}

func (c *checker) name(name string, min, max int) {
	if n := utf8.RuneCountInString(name); n < min || n > max {
		c.add("name", "must be %d to %d characters long (found %d)", min, max, n)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			c.add("name", "may contain only letters, digits and '-' (found %q)", r)
			break
		}
	}
}

// ApplyDefaults fills in unset settings: input schema CloudEventSchemaV1_0,
// 4 partitions, 7 days' retention.
func (t *Topic) ApplyDefaults() {
	p := &t.Properties
	if p.InputSchema == "" {
		p.InputSchema = CloudEventSchemaV1_0
	}
	if p.Partitions == 0 {
		p.Partitions = DefaultPartitions
	}
	if p.RetentionInDays == 0 {
		p.RetentionInDays = DefaultRetentionInDays
	}
}

// Validate checks a topic, name included (set it from the URL first), and
// reports every problem. Unset (zero) settings are valid, before or after
// ApplyDefaults. That partitions cannot change after creation is for the
// caller to check. Output-only fields are not checked.
func (t *Topic) Validate() error {
	var c checker
	c.name(t.Name, MinTopicNameLength, MaxTopicNameLength)
	p := &t.Properties
	if p.InputSchema != "" && !slices.Contains(inputSchemas, p.InputSchema) {
		c.add("properties.inputSchema", "must be %s", quoteList(inputSchemas))
	}
	c.optionalRange("properties.partitions", p.Partitions, MaxPartitions)
	c.optionalRange("properties.retentionInDays", p.RetentionInDays, MaxRetentionInDays)
	return c.err()
}

// ApplyDefaults fills in unset settings: 1 event per batch, 64 KB preferred
// batch size, and a retry policy of 30 attempts within 1440 minutes. It
// leaves eventDeliverySchema empty (see ResolveDeliverySchema) and does not
// generate a signing secret (see NewSigningSecret).
func (s *Subscription) ApplyDefaults() {
	d := &s.Properties.Destination.Properties
	if d.MaxEventsPerBatch == 0 {
		d.MaxEventsPerBatch = DefaultMaxEventsPerBatch
	}
	if d.PreferredBatchSizeInKilobytes == 0 {
		d.PreferredBatchSizeInKilobytes = DefaultPreferredBatchSizeInKilobytes
	}
	if d.DeliveryTimeoutInSeconds == 0 {
		d.DeliveryTimeoutInSeconds = DefaultDeliveryTimeoutInSeconds
	}
	if s.Properties.RetryPolicy == nil {
		s.Properties.RetryPolicy = &RetryPolicy{}
	}
	rp := s.Properties.RetryPolicy
	if rp.MaxDeliveryAttempts == 0 {
		rp.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if rp.EventTimeToLiveInMinutes == 0 {
		rp.EventTimeToLiveInMinutes = DefaultEventTimeToLiveInMinutes
	}
}

// ResolveDeliverySchema sets an empty eventDeliverySchema to the topic's
// input schema (itself CloudEventSchemaV1_0 when empty). Whether a topic's
// schema can be delivered in the subscription's is for the caller to check.
func (s *Subscription) ResolveDeliverySchema(topicInputSchema string) {
	if s.Properties.EventDeliverySchema != "" {
		return
	}
	if topicInputSchema == "" {
		topicInputSchema = CloudEventSchemaV1_0
	}
	s.Properties.EventDeliverySchema = topicInputSchema
}

// Validate checks an event subscription, name included (set it from the URL
// first), and reports every problem; now decides whether expirationTimeUtc
// is in the future. Unset (zero) settings are valid, before or after
// ApplyDefaults. Output-only fields are not checked.
func (s *Subscription) Validate(now time.Time) error {
	var c checker
	c.name(s.Name, MinSubscriptionNameLength, MaxSubscriptionNameLength)
	p := &s.Properties
	c.destination("properties.destination", &p.Destination)
	if p.Filter != nil {
		c.filter("properties.filter", p.Filter)
	}
	if p.EventDeliverySchema != "" && !slices.Contains(inputSchemas, p.EventDeliverySchema) {
		c.add("properties.eventDeliverySchema", "must be %s, or empty for the topic's input schema", quoteList(inputSchemas))
	}
	if rp := p.RetryPolicy; rp != nil {
		c.optionalRange("properties.retryPolicy.maxDeliveryAttempts", rp.MaxDeliveryAttempts, MaxMaxDeliveryAttempts)
		c.optionalRange("properties.retryPolicy.eventTimeToLiveInMinutes", rp.EventTimeToLiveInMinutes, MaxEventTimeToLiveInMinutes)
	}
	if dl := p.DeadLetterDestination; dl != nil {
		c.deadLetter("properties.deadLetterDestination", dl)
	}
	if len(p.Labels) > MaxLabels {
		c.add("properties.labels", "at most %d labels (found %d)", MaxLabels, len(p.Labels))
	}
	for i, l := range p.Labels {
		c.maxLength(indexPath("properties.labels", i), l, MaxLabelLength)
	}
	if p.ExpirationTimeUTC != nil && !p.ExpirationTimeUTC.After(now) {
		c.add("properties.expirationTimeUtc", "must be in the future")
	}
	if p.SigningSecret != "" {
		if err := checkSigningSecret(p.SigningSecret); err != nil {
			c.add("properties.signingSecret", "%v", err)
		}
	}
	return c.err()
}

func (c *checker) destination(path string, d *Destination) {
	if d.EndpointType != EndpointTypeWebHook {
		c.add(path+".endpointType", "must be %q", EndpointTypeWebHook)
	}
	path += ".properties"
	p := &d.Properties
	c.endpointURL(path+".endpointUrl", p.EndpointURL)
	c.optionalRange(path+".maxEventsPerBatch", p.MaxEventsPerBatch, MaxMaxEventsPerBatch)
	c.optionalRange(path+".preferredBatchSizeInKilobytes", p.PreferredBatchSizeInKilobytes, MaxPreferredBatchSizeInKilobytes)
	c.optionalRange(path+".deliveryTimeoutInSeconds", p.DeliveryTimeoutInSeconds, MaxDeliveryTimeoutInSeconds)

	mpath := path + ".deliveryAttributeMappings"
	if len(p.DeliveryAttributeMappings) > MaxDeliveryAttributeMappings {
		c.add(mpath, "at most %d delivery attribute mappings (found %d)", MaxDeliveryAttributeMappings, len(p.DeliveryAttributeMappings))
	}
	first := make(map[string]int) // lower-case header name → index
	for i, m := range p.DeliveryAttributeMappings {
		ipath := indexPath(mpath, i)
		lower := strings.ToLower(m.Name)
		switch {
		case m.Name == "":
			c.add(ipath+".name", "required")
		case !isHeaderToken(m.Name):
			c.add(ipath+".name", "must be an HTTP header name: letters, digits and !#$%%&'*+-.^_`|~")
		case isReservedHeader(lower):
			c.add(ipath+".name", "header %q is set by sluice and cannot be mapped (nor can aeg-* or webhook-* headers)", m.Name)
		default:
			if j, dup := first[lower]; dup {
				c.add(ipath+".name", "duplicate header name (also %s)", indexPath(mpath, j))
			} else {
				first[lower] = i
			}
		}
		ppath := ipath + ".properties"
		switch m.Type {
		case DeliveryAttributeStatic:
			if m.Properties.Value == "" {
				c.add(ppath+".value", "required for Static mappings")
			} else if !isHeaderValue(m.Properties.Value) {
				c.add(ppath+".value", "must be a valid HTTP header value (no control characters)")
			}
			c.maxLength(ppath+".value", m.Properties.Value, MaxDeliveryAttributeValueLength)
			if m.Properties.SourceField != "" {
				c.add(ppath+".sourceField", "allowed only for Dynamic mappings")
			}
		case DeliveryAttributeDynamic:
			if m.Properties.SourceField == "" {
				c.add(ppath+".sourceField", "required for Dynamic mappings")
			}
			if m.Properties.Value != "" {
				c.add(ppath+".value", "allowed only for Static mappings")
			}
			if m.Properties.IsSecret {
				c.add(ppath+".isSecret", "allowed only for Static mappings")
			}
		default:
			c.add(ipath+".type", "must be %s", quoteList(deliveryAttributeTypes))
		}
	}
}

func (c *checker) endpointURL(path, raw string) {
	if raw == "" {
		c.add(path, "required")
		return
	}
	if n := utf8.RuneCountInString(raw); n > MaxEndpointURLLength {
		c.add(path, "must be at most %d characters (found %d)", MaxEndpointURLLength, n)
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		c.add(path, "must be an absolute http or https URL: %v", urlErr(err))
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		c.add(path, "must be an absolute http or https URL")
		return
	}
	if u.Hostname() == "" {
		c.add(path, "must be an absolute http or https URL with a host")
	}
	if u.User != nil {
		c.add(path, "must not contain a user name or password; use a delivery attribute mapping (Authorization header) instead")
	}
}

// urlErr is url.Parse's reason without the URL, which may hold secrets.
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *checker) filter(path string, f *Filter) {
	if len(f.IncludedEventTypes) > MaxIncludedEventTypes {
		c.add(path+".includedEventTypes", "at most %d event types (found %d)", MaxIncludedEventTypes, len(f.IncludedEventTypes))
	}
	for i, et := range f.IncludedEventTypes {
		if et == "" {
			c.add(indexPath(path+".includedEventTypes", i), "must not be empty")
		}
	}
	c.maxLength(path+".subjectBeginsWith", f.SubjectBeginsWith, MaxSubjectFilterLength)
	c.maxLength(path+".subjectEndsWith", f.SubjectEndsWith, MaxSubjectFilterLength)

	apath := path + ".advancedFilters"
	if len(f.AdvancedFilters) > MaxAdvancedFilters {
		c.add(apath, "at most %d advanced filters (found %d)", MaxAdvancedFilters, len(f.AdvancedFilters))
	}
	total, reported := 0, false
	for i := range f.AdvancedFilters {
		af := &f.AdvancedFilters[i]
		ipath := indexPath(apath, i)
		c.advancedFilter(ipath, af)
		// A single value counts as one; so does each [low, high] pair.
		n, field := len(af.Values), ".values"
		if af.Value != nil {
			n, field = n+1, ".value"
		}
		total += n
		if total > MaxAdvancedFilterValues && !reported {
			reported = true
			c.add(ipath+field, "at most %d values across all advanced filters", MaxAdvancedFilterValues)
		}
	}
}

func (c *checker) advancedFilter(path string, af *AdvancedFilter) {
	if af.Key == "" {
		c.add(path+".key", "required")
	}
	kind, ok := operators[af.OperatorType]
	if !ok {
		c.add(path+".operatorType", "must be one of %s", strings.Join(Operators(), ", "))
		return
	}
	op := af.OperatorType
	vpath, vspath := path+".value", path+".values"
	switch kind {
	case operandNone:
		if af.Value != nil {
			c.add(vpath, "not allowed with %s, which takes no operand", op)
		}
		if af.Values != nil {
			c.add(vspath, "not allowed with %s, which takes no operand", op)
		}
		return
	case operandNumber, operandBool:
		if af.Values != nil {
			c.add(vspath, "not allowed with %s, which takes a single value", op)
		}
		want, ok := "a number", isNumber(af.Value)
		if kind == operandBool {
			_, ok = af.Value.(bool)
			want = "a boolean"
		}
		switch {
		case af.Value == nil:
			c.add(vpath, "required: %s takes %s", op, want)
		case !ok:
			c.add(vpath, "must be %s", want)
		}
		return
	}
	// The operators that take values.
	if af.Value != nil {
		c.add(vpath, "not allowed with %s, which takes values", op)
	}
	if len(af.Values) == 0 {
		c.add(vspath, "at least one value required for %s", op)
	}
	for j, v := range af.Values {
		jpath := indexPath(vspath, j)
		switch kind {
		case operandNumbers:
			if !isNumber(v) {
				c.add(jpath, "must be a number")
			}
		case operandStrings:
			s, ok := v.(string)
			if !ok {
				c.add(jpath, "must be a string")
				continue
			}
			c.maxLength(jpath, s, MaxAdvancedFilterStrings)
		case operandNumberRanges:
			pair, ok := v.([]any)
			if !ok || len(pair) != 2 {
				c.add(jpath, "must be a [low, high] pair of numbers")
				continue
			}
			lowOK, highOK := isNumber(pair[0]), isNumber(pair[1])
			if !lowOK {
				c.add(indexPath(jpath, 0), "must be a number")
			}
			if !highOK {
				c.add(indexPath(jpath, 1), "must be a number")
			}
			if lowOK && highOK && pair[0].(float64) > pair[1].(float64) {
				c.add(jpath, "low must not be greater than high in a [low, high] range")
			}
		}
	}
}

// isNumber reports whether v is a filter number: a finite float64, as
// DecodeSubscription produces.
func isNumber(v any) bool {
	f, ok := v.(float64)
	return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func (c *checker) deadLetter(path string, dl *DeadLetterDestination) {
	upath := path + ".properties.url"
	switch dl.EndpointType {
	case DeadLetterStorageBucket:
		if dl.Properties.URL == "" {
			c.add(upath, "required for StorageBucket")
			return
		}
		if msg := checkStoreURL(dl.Properties.URL); msg != "" {
			c.add(upath, "%s", msg)
		}
	case DeadLetterNone:
		if dl.Properties.URL != "" {
			c.add(upath, "not allowed when endpointType is None")
		}
	default:
		c.add(path+".endpointType", "must be %s", quoteList(deadLetterTypes))
	}
}

// checkStoreURL checks a store URL as objectlog.Open reads it, and returns
// what is wrong or "".
func checkStoreURL(raw string) string {
	const want = "must be a store URL: file:///path, s3://bucket, gs://bucket, azblob://container or mem://"
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%s (%v)", want, urlErr(err))
	}
	if !slices.Contains(deadLetterSchemes, u.Scheme) {
		return want
	}
	if u.User != nil {
		return "must not contain a user name or password"
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" || !strings.HasPrefix(u.Path, "/") {
			return "file URLs need an absolute path (file:///path)"
		}
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return fmt.Sprintf("%s URLs need a bucket name (%s://bucket)", u.Scheme, u.Scheme)
		}
	}
	return ""
}

// checkSigningSecret checks a Standard Webhooks secret: whsec_ and the
// standard base64 of 24 to 64 bytes. Errors never include the secret.
func checkSigningSecret(secret string) error {
	const format = "must be whsec_ followed by the standard base64 encoding of %d to %d bytes"
	b64, ok := strings.CutPrefix(secret, SigningSecretPrefix)
	// DecodeString skips \r and \n; a secret has neither.
	if !ok || strings.ContainsAny(b64, "\r\n") {
		return fmt.Errorf(format, MinSigningSecretBytes, MaxSigningSecretBytes)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return fmt.Errorf(format, MinSigningSecretBytes, MaxSigningSecretBytes)
	}
	if len(key) < MinSigningSecretBytes || len(key) > MaxSigningSecretBytes {
		return fmt.Errorf(format+" (found %d bytes)", MinSigningSecretBytes, MaxSigningSecretBytes, len(key))
	}
	return nil
}

// isHeaderToken reports whether s is an RFC 9110 token, the syntax of a
// header name.
func isHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s can be sent as a header value, as
// net/http checks: no control characters other than tab.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func isReservedHeader(lower string) bool {
	if slices.Contains(reservedHeaders, lower) {
		return true
	}
	for _, p := range reservedHeaderPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}
