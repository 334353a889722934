package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/schemas"
)

func newSubCmd(c *cli) *cobra.Command {
	cfg := &clientConfig{}
	cmd := &cobra.Command{
		Use:   "sub",
		Short: "Create, list, show, delete and replay (seek) event subscriptions of a topic (through the admin API)",
		// Runnable, so that an unknown subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cfg.registerFlags(cmd)
	cmd.AddCommand(
		newSubCreateCmd(c, cfg),
		newSubListCmd(c, cfg),
		newSubShowCmd(c, cfg),
		newSubDeleteCmd(c, cfg),
		newSubSeekCmd(c, cfg),
		newSubRotateSecretCmd(c, cfg),
	)
	return cmd
}

func subsPath(topic string) string { return topicPath(topic) + "/eventSubscriptions" }

func subPath(topic, name string) string { return subsPath(topic) + "/" + url.PathEscape(name) }

// subFlags are the flags of `sub create` that build a subscription; -f
// (the whole resource from a file) excludes all of them.
type subFlags struct {
	Endpoint          string
	EventTypes        []string
	SubjectBeginsWith string
	SubjectEndsWith   string
	MaxEventsPerBatch int
	TimeoutSeconds    int
	SkipValidation    bool
	DeliverySchema    string
	MaxAttempts       int
	TTLMinutes        int
	Labels            []string
	Headers           []string
	SecretHeaders     []string
}

// subFlagNames are the flags registerFlags defines, in its order.
var subFlagNames = []string{
	"endpoint", "event-types", "subject-begins-with", "subject-ends-with", "max-events-per-batch",
	"delivery-timeout", "skip-validation", "delivery-schema", "max-attempts", "ttl-minutes", "label", "header", "secret-header",
}

func (sf *subFlags) registerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&sf.Endpoint, "endpoint", "", "webhook URL events are delivered to (required unless -f)")
	f.StringSliceVar(&sf.EventTypes, "event-types", nil, "deliver only these event types (comma-separated or repeated)")
	f.StringVar(&sf.SubjectBeginsWith, "subject-begins-with", "", "deliver only events whose subject begins with this")
	f.StringVar(&sf.SubjectEndsWith, "subject-ends-with", "", "deliver only events whose subject ends with this")
	f.IntVar(&sf.MaxEventsPerBatch, "max-events-per-batch", 0,
		fmt.Sprintf("events per delivery, 1–%d (server default %d)", schemas.MaxMaxEventsPerBatch, schemas.DefaultMaxEventsPerBatch))
	f.IntVar(&sf.TimeoutSeconds, "delivery-timeout", 0,
		fmt.Sprintf("seconds one delivery may take, 1–%d (server default %d)", schemas.MaxDeliveryTimeoutInSeconds, schemas.DefaultDeliveryTimeoutInSeconds))
	f.BoolVar(&sf.SkipValidation, "skip-validation", false, "deliver without the endpoint validation handshake (local development)")
	f.StringVar(&sf.DeliverySchema, "delivery-schema", "",
		"schema of delivered events: "+schemas.CloudEventSchemaV1_0+" or "+schemas.EventGridSchema+" (default: the topic's input schema)")
	f.IntVar(&sf.MaxAttempts, "max-attempts", 0,
		fmt.Sprintf("delivery attempts before dead-lettering, 1–%d (server default %d)", schemas.MaxMaxDeliveryAttempts, schemas.DefaultMaxDeliveryAttempts))
	f.IntVar(&sf.TTLMinutes, "ttl-minutes", 0,
		fmt.Sprintf("minutes an event is retried before dead-lettering, 1–%d (server default %d)", schemas.MaxEventTimeToLiveInMinutes, schemas.DefaultEventTimeToLiveInMinutes))
	f.StringArrayVar(&sf.Labels, "label", nil, "a label (repeat for more)")
	f.StringArrayVar(&sf.Headers, "header", nil, "Name=Value: a header sent with every delivery (repeat for more)")
	f.StringArrayVar(&sf.SecretHeaders, "secret-header", nil, "Name=Value: as --header, but the value is hidden when read back (repeat for more)")
}

// subscription builds the subscription name the flags describe.
func (sf *subFlags) subscription(name string) (schemas.Subscription, error) {
	if sf.Endpoint == "" {
		return schemas.Subscription{}, errors.New("--endpoint is required (or give the whole subscription with -f file.json)")
	}
	s := schemas.Subscription{Name: name}
	p := &s.Properties
	p.Destination = schemas.Destination{
		EndpointType: schemas.EndpointTypeWebHook,
		Properties: schemas.DestinationProperties{
			EndpointURL:              sf.Endpoint,
			MaxEventsPerBatch:        sf.MaxEventsPerBatch,
			DeliveryTimeoutInSeconds: sf.TimeoutSeconds,
			SkipEndpointValidation:   sf.SkipValidation,
		},
	}
	for _, h := range sf.Headers {
		m, err := headerMapping("--header", h, false)
		if err != nil {
			return schemas.Subscription{}, err
		}
		p.Destination.Properties.DeliveryAttributeMappings = append(p.Destination.Properties.DeliveryAttributeMappings, m)
	}
	for _, h := range sf.SecretHeaders {
		m, err := headerMapping("--secret-header", h, true)
		if err != nil {
			return schemas.Subscription{}, err
		}
		p.Destination.Properties.DeliveryAttributeMappings = append(p.Destination.Properties.DeliveryAttributeMappings, m)
	}
	if len(sf.EventTypes) > 0 || sf.SubjectBeginsWith != "" || sf.SubjectEndsWith != "" {
		p.Filter = &schemas.Filter{
			IncludedEventTypes: sf.EventTypes,
			SubjectBeginsWith:  sf.SubjectBeginsWith,
			SubjectEndsWith:    sf.SubjectEndsWith,
		}
	}
	p.EventDeliverySchema = sf.DeliverySchema
	if sf.MaxAttempts != 0 || sf.TTLMinutes != 0 {
		p.RetryPolicy = &schemas.RetryPolicy{MaxDeliveryAttempts: sf.MaxAttempts, EventTimeToLiveInMinutes: sf.TTLMinutes}
	}
	p.Labels = sf.Labels
	return s, nil
}

// headerMapping parses Name=Value into a Static delivery attribute.
func headerMapping(flag, nv string, secret bool) (schemas.DeliveryAttributeMapping, error) {
	name, value, ok := strings.Cut(nv, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return schemas.DeliveryAttributeMapping{}, fmt.Errorf("%s %q: want Name=Value", flag, nv)
	}
	return schemas.DeliveryAttributeMapping{
		Name:       name,
		Type:       schemas.DeliveryAttributeStatic,
		Properties: schemas.DeliveryAttributeProperties{Value: value, IsSecret: secret},
	}, nil
}

// readSubscriptionFile reads the subscription resource in path ("-":
// standard input) and returns it as sent, with its name.
func readSubscriptionFile(path string, stdin io.Reader) (json.RawMessage, string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("-f: %w", err)
	}
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, "", fmt.Errorf("-f %s: not a JSON subscription resource: %w", path, err)
	}
	return data, head.Name, nil
}

func newSubCreateCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var sf subFlags
	var file string
	cmd := &cobra.Command{
		Use: "create <topic> <name> --endpoint URL [flags]",
		Example: "  sluice sub create orders audit --endpoint https://example.com/hook --event-types order.created\n" +
			"  sluice sub create orders -f audit.json",
		Short: "Create an event subscription and print it with its signing secret",
		Long: "Create an event subscription of a topic (it must not exist yet), from flags or,\n" +
			"with -f, from a file holding the whole resource as the admin API takes it (\"-\" reads\n" +
			"standard input); -f excludes the other subscription flags. The name comes from the\n" +
			"argument, else from the file.\n\n" +
			"The answer includes the signing secret that deliveries are signed with (Standard\n" +
			"Webhooks); later reads hide it unless `sluice sub show --secrets`.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			var name string
			if len(args) == 2 {
				name = args[1]
			}
			if file != "" {
				var given []string
				for _, n := range subFlagNames {
					if cmd.Flags().Changed(n) {
						given = append(given, "--"+n)
					}
				}
				if len(given) > 0 {
					return fmt.Errorf("-f takes the whole subscription from the file; it cannot be combined with %s (put those settings in the file)",
						strings.Join(given, ", "))
				}
				raw, fileName, err := readSubscriptionFile(file, cmd.InOrStdin())
				if err != nil {
					return err
				}
				if name == "" {
					name = fileName
				}
				if name == "" {
					return fmt.Errorf("-f %s has no \"name\": give the name as the second argument", file)
				}
				body = raw
			} else {
				if name == "" {
					return errors.New("give the topic and the subscription name: sluice sub create <topic> <name> --endpoint URL")
				}
				s, err := sf.subscription(name)
				if err != nil {
					return err
				}
				body = s
			}
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{
				method: http.MethodPut,
				path:   subPath(args[0], name),
				header: map[string]string{"If-None-Match": "*"},
				body:   body,
			})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var s schemas.Subscription
			if err := a.decode(&s); err != nil {
				return err
			}
			// The signing secret is shown below, on its own.
			fields := slices.DeleteFunc(subFields(s), func(f field) bool { return f.key == "signingSecret" })
			if err := printFields(c.stdout, fields); err != nil {
				return err
			}
			if secret := s.Properties.SigningSecret; secret != "" {
				_, err = fmt.Fprintf(c.stdout, "\nSigning secret (deliveries carry Standard Webhooks signatures made with it; keep it\n"+
					"for your receiver; `sluice sub show %s %s --secrets` shows it again):\n\n  %s\n", s.Topic, s.Name, secret)
			}
			return err
		},
	}
	sf.registerFlags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file holding the whole subscription resource (\"-\": standard input)")
	return cmd
}

func newSubListCmd(c *cli, cfg *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "list <topic>",
		Short: "List the event subscriptions of a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodGet, path: subsPath(args[0])})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				raw, err := listJSON(a)
				if err != nil {
					return err
				}
				return printJSON(c.stdout, raw)
			}
			var l struct {
				Value []schemas.Subscription `json:"value"`
			}
			if err := a.decode(&l); err != nil {
				return err
			}
			if len(l.Value) == 0 {
				_, err := fmt.Fprintf(c.stdout, "Topic %s has no event subscriptions. Create one with: sluice sub create %s <name> --endpoint URL\n",
					args[0], args[0])
				return err
			}
			tw := newTable(c.stdout)
			row(tw, "NAME", "ENDPOINT", "SCHEMA", "FILTER", "STATE")
			for _, s := range l.Value {
				p := s.Properties
				row(tw, s.Name, p.Destination.Properties.EndpointURL, p.EventDeliverySchema, filterSummary(p.Filter), p.ProvisioningState)
			}
			return tw.Flush()
		},
	}
}

func newSubShowCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var secrets bool
	cmd := &cobra.Command{
		Use:   "show <topic> <name>",
		Short: "Show an event subscription (--secrets: with its signing secret and secret headers)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			path := subPath(args[0], args[1])
			if secrets {
				path += "?secrets=true"
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodGet, path: path})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var s schemas.Subscription
			if err := a.decode(&s); err != nil {
				return err
			}
			if err := printFields(c.stdout, subFields(s)); err != nil {
				return err
			}
			// Progress comes from the log: a server without it (501) just
			// does not show it.
			p, err := api.do(cmd.Context(), apiRequest{method: http.MethodGet, path: subPath(args[0], args[1]) + "/positions"})
			if err != nil {
				fmt.Fprintf(c.stderr, "(delivery progress unavailable: %v)\n", err)
				return nil
			}
			var pos struct{ Value []dispatch.PartitionPosition }
			if err := p.decode(&pos); err != nil {
				return err
			}
			return printPositions(c.stdout, pos.Value)
		},
	}
	cmd.Flags().BoolVar(&secrets, "secrets", false, "show the signing secret and the values of secret headers")
	return cmd
}

func newSubDeleteCmd(c *cli, cfg *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <topic> <name>",
		Short: "Delete an event subscription",
		Long: "Delete an event subscription. Deleting one that does not exist is not an error.\n" +
			"Prints a line in table output and nothing with -o json.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodDelete, path: subPath(args[0], args[1])})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return nil
			}
			if a.status == http.StatusNoContent {
				_, err = fmt.Fprintf(c.stdout, "Event subscription %s of topic %s does not exist; nothing deleted.\n", args[1], args[0])
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Deleted event subscription %s of topic %s.\n", args[1], args[0])
			return err
		},
	}
}

// filterSummary is a filter in one table cell; "" when it lets everything through.
func filterSummary(f *schemas.Filter) string {
	if f == nil {
		return ""
	}
	var parts []string
	if len(f.IncludedEventTypes) > 0 {
		parts = append(parts, "types="+strings.Join(f.IncludedEventTypes, ","))
	}
	if f.SubjectBeginsWith != "" {
		parts = append(parts, "subject^="+strconv.Quote(f.SubjectBeginsWith))
	}
	if f.SubjectEndsWith != "" {
		parts = append(parts, "subject$="+strconv.Quote(f.SubjectEndsWith))
	}
	if n := len(f.AdvancedFilters); n > 0 {
		parts = append(parts, fmt.Sprintf("advanced=%d", n))
	}
	return strings.Join(parts, " ")
}

func subFields(s schemas.Subscription) []field {
	p := s.Properties
	d := p.Destination.Properties
	fs := []field{
		{"name", s.Name},
		{"topic", s.Topic},
		{"endpointType", p.Destination.EndpointType},
		{"endpoint", d.EndpointURL},
		{"deliverySchema", p.EventDeliverySchema},
		{"maxEventsPerBatch", itoa(d.MaxEventsPerBatch)},
		{"preferredBatchSizeInKilobytes", itoa(d.PreferredBatchSizeInKilobytes)},
		{"deliveryTimeout", itoa(d.DeliveryTimeoutInSeconds) + " s"},
	}
	for _, m := range d.DeliveryAttributeMappings {
		v := m.Properties.Value
		switch {
		case m.Type == schemas.DeliveryAttributeDynamic:
			v = "from event attribute " + m.Properties.SourceField
		case m.Properties.IsSecret && v == "":
			v = "(secret; --secrets shows it)"
		case m.Properties.IsSecret:
			v += " (secret)"
		}
		fs = append(fs, field{"header", m.Name + ": " + v})
	}
	if f := p.Filter; f != nil {
		fs = append(fs,
			field{"eventTypes", strings.Join(f.IncludedEventTypes, ", ")},
			field{"subjectBeginsWith", f.SubjectBeginsWith},
			field{"subjectEndsWith", f.SubjectEndsWith},
		)
		if f.IsSubjectCaseSensitive {
			fs = append(fs, field{"subjectCaseSensitive", "true"})
		}
		for _, af := range f.AdvancedFilters {
			fs = append(fs, field{"advancedFilter", advancedFilterString(af)})
		}
		if f.EnableAdvancedFilteringOnArrays {
			fs = append(fs, field{"advancedFilteringOnArrays", "true"})
		}
	}
	if r := p.RetryPolicy; r != nil {
		fs = append(fs, field{"maxDeliveryAttempts", itoa(r.MaxDeliveryAttempts)})
		if r.EventTimeToLiveInMinutes != 0 {
			fs = append(fs, field{"eventTimeToLive", itoa(r.EventTimeToLiveInMinutes) + " minutes"})
		}
	}
	deadLetter := "sluice's store, under " + dispatch.DeadLetterPrefix(s.Topic, s.Name)
	if dl := p.DeadLetterDestination; dl != nil {
		switch dl.EndpointType {
		case schemas.DeadLetterNone:
			deadLetter = "none (undeliverable events are dropped)"
		default:
			deadLetter = dl.Properties.URL
		}
	}
	fs = append(fs,
		field{"deadLetter", deadLetter},
		field{"labels", strings.Join(p.Labels, ", ")},
		field{"expires", timeString(p.ExpirationTimeUTC)},
	)
	secret := p.SigningSecret
	if secret == "" {
		secret = "(hidden; --secrets shows it)"
	}
	fs = append(fs,
		field{"signingSecret", secret},
		field{"state", p.ProvisioningState},
		field{"stateMessage", p.ProvisioningMessage},
		field{"etag", s.Version},
	)
	return fs
}

func advancedFilterString(af schemas.AdvancedFilter) string {
	s := af.Key + " " + af.OperatorType
	switch {
	case af.Values != nil:
		b, _ := json.Marshal(af.Values)
		s += " " + string(b)
	case af.Value != nil:
		b, _ := json.Marshal(af.Value)
		s += " " + string(b)
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
