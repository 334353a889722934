package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/schemas"
)

func newTopicCmd(c *cli) *cobra.Command {
	cfg := &clientConfig{}
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, show and delete topics and manage their access keys (through the admin API)",
		// Runnable, so that an unknown subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cfg.registerFlags(cmd)
	cmd.AddCommand(
		newTopicCreateCmd(c, cfg),
		newTopicListCmd(c, cfg),
		newTopicShowCmd(c, cfg),
		newTopicDeleteCmd(c, cfg),
		newTopicKeysCmd(c, cfg),
	)
	return cmd
}

func topicPath(name string) string { return "/api/topics/" + url.PathEscape(name) }

func newTopicCreateCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var props schemas.TopicProperties
	cmd := &cobra.Command{
		Use:   "create <name>",
		Short: "Create a topic and print it with its access keys and publish endpoint",
		Long: "Create a topic (it must not exist yet) and print it, its two access keys and the\n" +
			"endpoint to publish to. With -o json only the topic is printed; `sluice topic keys`\n" +
			"prints the keys.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := api.do(ctx, apiRequest{
				method: http.MethodPut,
				path:   topicPath(args[0]),
				header: map[string]string{"If-None-Match": "*"},
				body:   schemas.Topic{Name: args[0], Properties: props},
			})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var t schemas.Topic
			if err := a.decode(&t); err != nil {
				return err
			}
			k, err := api.do(ctx, apiRequest{method: http.MethodPost, path: topicPath(t.Name) + "/listKeys"})
			if err != nil {
				return fmt.Errorf("topic %q was created, but its keys could not be read: %w", t.Name, err)
			}
			var keys schemas.TopicKeys
			if err := k.decode(&keys); err != nil {
				return err
			}
			if err := printFields(c.stdout, topicFields(t)); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout)
			if err := printFields(c.stdout, keyFields(keys)); err != nil {
				return err
			}
			printPublishHint(c.stdout, t, keys)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&props.InputSchema, "input-schema", "",
		"schema of published events: "+schemas.CloudEventSchemaV1_0+" or "+schemas.EventGridSchema+" (server default "+schemas.CloudEventSchemaV1_0+")")
	f.IntVar(&props.Partitions, "partitions", 0,
		fmt.Sprintf("partitions, 1–%d, fixed once created (server default %d)", schemas.MaxPartitions, schemas.DefaultPartitions))
	f.IntVar(&props.RetentionInDays, "retention-days", 0,
		fmt.Sprintf("days events are kept, 1–%d (server default %d)", schemas.MaxRetentionInDays, schemas.DefaultRetentionInDays))
	return cmd
}

func newTopicListCmd(c *cli, cfg *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodGet, path: "/api/topics"})
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
				Value []schemas.Topic `json:"value"`
			}
			if err := a.decode(&l); err != nil {
				return err
			}
			if len(l.Value) == 0 {
				_, err := fmt.Fprintln(c.stdout, "No topics yet. Create one with: sluice topic create <name>")
				return err
			}
			tw := newTable(c.stdout)
			row(tw, "NAME", "SCHEMA", "PARTITIONS", "RETENTION", "ENDPOINT")
			for _, t := range l.Value {
				p := t.Properties
				row(tw, t.Name, p.InputSchema, strconv.Itoa(p.Partitions), strconv.Itoa(p.RetentionInDays)+"d", p.Endpoint)
			}
			return tw.Flush()
		},
	}
}

func newTopicShowCmd(c *cli, cfg *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "show <name>",
		Short: "Show a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodGet, path: topicPath(args[0])})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var t schemas.Topic
			if err := a.decode(&t); err != nil {
				return err
			}
			return printFields(c.stdout, topicFields(t))
		},
	}
}

func newTopicDeleteCmd(c *cli, cfg *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <name>",
		Short: "Delete a topic, its events and its event subscriptions",
		Long: "Delete a topic, its events and its event subscriptions. Deleting a topic that does\n" +
			"not exist is not an error. Prints a line in table output and nothing with -o json.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodDelete, path: topicPath(args[0])})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return nil
			}
			if a.status == http.StatusNoContent {
				_, err = fmt.Fprintf(c.stdout, "Topic %s does not exist; nothing deleted.\n", args[0])
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Deleted topic %s, its events and its event subscriptions.\n", args[0])
			return err
		},
	}
}

func newTopicKeysCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var regenerate string
	cmd := &cobra.Command{
		Use:   "keys <name>",
		Short: "Print a topic's two access keys, or replace one with --regenerate",
		Long: "Print a topic's two access keys; publishers send either one. To rotate, move\n" +
			"publishers to one key, regenerate the other, then move them back.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			req := apiRequest{method: http.MethodPost, path: topicPath(args[0]) + "/listKeys"}
			if cmd.Flags().Changed("regenerate") {
				req = apiRequest{
					method: http.MethodPost,
					path:   topicPath(args[0]) + "/regenerateKey",
					body:   map[string]string{"keyName": regenerate},
				}
			}
			a, err := api.do(cmd.Context(), req)
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var keys schemas.TopicKeys
			if err := a.decode(&keys); err != nil {
				return err
			}
			return printFields(c.stdout, keyFields(keys))
		},
	}
	cmd.Flags().StringVar(&regenerate, "regenerate", "", "replace this key (key1 or key2) with a new one, then print both")
	return cmd
}

// printPublishHint shows a newcomer how to publish one event to t.
func printPublishHint(w io.Writer, t schemas.Topic, keys schemas.TopicKeys) {
	if t.Properties.Endpoint == "" {
		return
	}
	contentType := "application/cloudevents-batch+json"
	event := `[{"specversion":"1.0","id":"1","source":"demo","type":"demo.hello","data":{"hello":"world"}}]`
	if t.Properties.InputSchema == schemas.EventGridSchema {
		contentType = "application/json"
		event = `[{"id":"1","subject":"demo","eventType":"demo.hello","eventTime":"` +
			time.Now().UTC().Format(time.RFC3339) + `","data":{"hello":"world"},"dataVersion":"1"}]`
	}
	fmt.Fprintf(w, "\nPublish with either key in the aeg-sas-key header:\n\n"+
		"  curl -X POST '%s' \\\n    -H 'aeg-sas-key: %s' \\\n    -H 'Content-Type: %s' \\\n    -d '%s'\n",
		t.Properties.Endpoint, keys.Key1, contentType, event)
}

func topicFields(t schemas.Topic) []field {
	p := t.Properties
	return []field{
		{"name", t.Name},
		{"inputSchema", p.InputSchema},
		{"partitions", strconv.Itoa(p.Partitions)},
		{"retention", days(p.RetentionInDays)},
		{"endpoint", p.Endpoint},
		{"state", p.ProvisioningState},
		{"created", timeString(p.CreatedAt)},
		{"etag", t.Version},
	}
}

func keyFields(k schemas.TopicKeys) []field {
	return []field{{"key1", k.Key1}, {"key2", k.Key2}}
}

func days(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

func timeString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
