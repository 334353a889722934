package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/schemas"
)

const (
	// envTopicKey holds the topic key when --key is not given.
	envTopicKey = "SLUICE_TOPIC_KEY"
	// defaultBatch is how many events one publish request carries by default.
	defaultBatch = 100
	// maxBatch is Event Grid's limit of events per request.
	maxBatch = 5000
	// cliSource, cliType and cliSubject describe events the CLI wraps.
	cliSource  = "sluice-cli"
	cliType    = "sluice.cli.event"
	cliSubject = "sluice-cli"
)

// publishConfig is what `sluice publish` needs besides the events.
type publishConfig struct {
	client clientConfig
	File   string
	Batch  int
	Key    string
	Schema string
}

func (cfg *publishConfig) registerFlags(cmd *cobra.Command) {
	cfg.client.registerFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&cfg.File, "file", "f", "", "read events from this file as JSON lines, one event per line (- reads standard input)")
	f.IntVar(&cfg.Batch, "batch", defaultBatch, fmt.Sprintf("events per publish request, 1–%d", maxBatch))
	f.StringVar(&cfg.Key, "key", "", "topic key (key1 or key2) sent as aeg-sas-key (default $"+envTopicKey+", else read with the admin token)")
	f.StringVar(&cfg.Schema, "schema", "",
		"the topic's input schema, "+schemas.CloudEventSchemaV1_0+" or "+schemas.EventGridSchema+", for publishing with --key and no admin token (with the token, it is read from the topic)")
}

func (cfg *publishConfig) resolve(getenv func(string) string) {
	if cfg.Key == "" {
		cfg.Key = getenv(envTopicKey)
	}
}

func (cfg *publishConfig) validate(args []string) error {
	if cfg.Batch < 1 || cfg.Batch > maxBatch {
		return fmt.Errorf("--batch %d: want 1–%d", cfg.Batch, maxBatch)
	}
	if cfg.Schema != "" && cfg.Schema != schemas.CloudEventSchemaV1_0 && cfg.Schema != schemas.EventGridSchema {
		return fmt.Errorf("--schema %q: want %s or %s", cfg.Schema, schemas.CloudEventSchemaV1_0, schemas.EventGridSchema)
	}
	switch {
	case cfg.File != "" && len(args) > 0:
		return errors.New("events come from the arguments or from -f, not both")
	case cfg.File == "" && len(args) == 0:
		return errors.New("no events: give them as arguments ('{\"hello\":\"world\"}') or with -f FILE (-f - reads standard input)")
	}
	return nil
}

func newPublishCmd(c *cli) *cobra.Command {
	cfg := &publishConfig{}
	cmd := &cobra.Command{
		Use:   "publish <topic> [EVENT_JSON ...]",
		Short: "Publish events to a topic (through the publish API)",
		Long: "Publish events, given as arguments or read as JSON lines from -f FILE or -f -\n" +
			"(standard input), to a topic. The topic's input schema decides the format: a\n" +
			"CloudEvent (an object with \"specversion\") or an Event Grid event (an object with\n" +
			"\"eventType\") is sent as is; any other JSON value becomes the data of a new event\n" +
			"of type " + cliType + ". Every event is checked before the first request is\n" +
			"sent; requests carry --batch events each.\n\n" +
			"The topic key comes from --key or $" + envTopicKey + ", else it is read with the\n" +
			"admin token (--token or $" + clientEnvToken + ").",
		Example: "  sluice publish orders '{\"id\":42}' '\"hello\"'\n" +
			"  sluice publish orders -f events.jsonl --batch 500\n" +
			"  producer | sluice publish orders -f -",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.resolve(os.Getenv)
			if err := cfg.validate(args[1:]); err != nil {
				return err
			}
			var events []json.RawMessage
			var err error
			if cfg.File != "" {
				events, err = readEventFile(cfg.File, cmd.InOrStdin())
			} else {
				events, err = parseEventArgs(args[1:])
			}
			if err != nil {
				return err
			}
			api, err := cfg.client.client(os.Getenv)
			if err != nil {
				return err
			}
			p := &publisher{api: api, batch: cfg.Batch, now: time.Now, newID: func() string { return ulid.Make().String() }}
			return p.run(cmd.Context(), c, cfg, args[0], events)
		},
	}
	cfg.registerFlags(cmd)
	return cmd
}

// parseEventArgs checks that every argument is one JSON value.
func parseEventArgs(args []string) ([]json.RawMessage, error) {
	events := make([]json.RawMessage, 0, len(args))
	for i, a := range args {
		var v json.RawMessage
		if err := json.Unmarshal([]byte(a), &v); err != nil {
			return nil, fmt.Errorf("event argument %d is not a JSON value (%v): quote text as a JSON string, e.g. '\"hello\"'", i+1, err)
		}
		events = append(events, v)
	}
	return events, nil
}

// readEventFile reads JSON lines from path, or from stdin for "-".
func readEventFile(path string, stdin io.Reader) ([]json.RawMessage, error) {
	name, r := "standard input", stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		name, r = path, f
	}
	events, err := parseJSONLines(r, name)
	if err == nil && len(events) == 0 {
		err = fmt.Errorf("%s holds no events", name)
	}
	return events, err
}

// parseJSONLines reads one JSON value per line, skipping blank lines. All
// of them are read and checked, so a bad line stops the publish before any
// request is sent.
func parseJSONLines(r io.Reader, name string) ([]json.RawMessage, error) {
	br := bufio.NewReader(r)
	var events []json.RawMessage
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var v json.RawMessage
			if uerr := json.Unmarshal(t, &v); uerr != nil {
				return nil, fmt.Errorf("%s line %d is not one JSON value: %v (nothing was published)", name, n, uerr)
			}
			events = append(events, v)
		}
		if err != nil {
			return events, nil
		}
	}
}

// publisher sends events to a topic's publish API in batches.
type publisher struct {
	api   *apiClient
	batch int
	now   func() time.Time
	newID func() string
}

// publishTarget is where and how events are published.
type publishTarget struct {
	topic    string
	schema   string
	key      string
	keyGiven bool   // the key came from --key or the environment
	endpoint string // the topic's advertised endpoint, if read
}

func (p *publisher) run(ctx context.Context, c *cli, cfg *publishConfig, topic string, events []json.RawMessage) error {
	target, err := p.target(ctx, cfg, topic)
	if err != nil {
		return err
	}
	contentType := "application/cloudevents-batch+json"
	wrap := p.wrapCloudEvent
	if target.schema == schemas.EventGridSchema {
		contentType, wrap = "application/json", p.wrapEventGridEvent
	}
	for i, e := range events {
		if events[i], err = wrap(e); err != nil {
			return err
		}
	}
	published, requests, err := p.send(ctx, target, contentType, events)
	if cfg.client.Output == outputJSON {
		data, jerr := json.Marshal(map[string]int{"published": published, "requests": requests})
		if jerr != nil {
			return jerr
		}
		if _, werr := fmt.Fprintf(c.stdout, "%s\n", data); werr != nil && err == nil {
			err = werr
		}
		return err
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stderr, "published %d event%s to %s in %d request%s\n", published, plural(published), topic, requests, plural(requests))
	return err
}

// target finds the topic's schema and a key to publish with: from the
// topic when the admin token is at hand, else from --schema and --key.
func (p *publisher) target(ctx context.Context, cfg *publishConfig, topic string) (publishTarget, error) {
	t := publishTarget{topic: topic, schema: cfg.Schema, key: cfg.Key, keyGiven: cfg.Key != ""}
	if p.api.token == "" {
		switch {
		case t.key == "":
			return t, fmt.Errorf("no topic key to publish with: pass --key or set $%s (see `sluice topic keys %s`), "+
				"or pass --token or set $%s to the admin token so sluice can read the key", envTopicKey, topic, clientEnvToken)
		case t.schema == "":
			return t, fmt.Errorf("the input schema of topic %s is unknown without the admin token: pass --token or set $%s, "+
				"or pass --schema %s or --schema %s", topic, clientEnvToken, schemas.CloudEventSchemaV1_0, schemas.EventGridSchema)
		}
		return t, nil
	}
	a, err := p.api.do(ctx, apiRequest{method: http.MethodGet, path: topicPath(topic)})
	if err != nil {
		return t, err
	}
	var tp schemas.Topic
	if err := a.decode(&tp); err != nil {
		return t, err
	}
	schema := tp.Properties.InputSchema
	if schema == "" {
		schema = schemas.CloudEventSchemaV1_0
	}
	if t.schema != "" && t.schema != schema {
		return t, fmt.Errorf("--schema %s, but topic %s takes %s events", t.schema, topic, schema)
	}
	t.schema, t.endpoint = schema, tp.Properties.Endpoint
	if t.key == "" {
		a, err := p.api.do(ctx, apiRequest{method: http.MethodPost, path: topicPath(topic) + "/listKeys"})
		if err != nil {
			return t, fmt.Errorf("read the key of topic %s (or pass --key or set $%s): %w", topic, envTopicKey, err)
		}
		var keys schemas.TopicKeys
		if err := a.decode(&keys); err != nil {
			return t, err
		}
		t.key = keys.Key1
	}
	return t, nil
}

// cliCloudEvent is a JSON value wrapped into a CloudEvent.
type cliCloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// cliEventGridEvent is a JSON value wrapped into an Event Grid event.
type cliEventGridEvent struct {
	ID          string          `json:"id"`
	Subject     string          `json:"subject"`
	EventType   string          `json:"eventType"`
	EventTime   string          `json:"eventTime"`
	Data        json.RawMessage `json:"data"`
	DataVersion string          `json:"dataVersion"`
}

// wrapCloudEvent returns v as is if it is a CloudEvent, else a new
// CloudEvent carrying v as its data.
func (p *publisher) wrapCloudEvent(v json.RawMessage) (json.RawMessage, error) {
	if hasMember(v, "specversion") {
		return v, nil
	}
	return json.Marshal(cliCloudEvent{
		SpecVersion: "1.0", ID: p.newID(), Source: cliSource, Type: cliType,
		Time: p.now().UTC().Format(time.RFC3339Nano), DataContentType: "application/json", Data: v,
	})
}

// wrapEventGridEvent returns v as is if it is an Event Grid event, else a
// new one carrying v as its data.
func (p *publisher) wrapEventGridEvent(v json.RawMessage) (json.RawMessage, error) {
	if hasMember(v, "eventType") {
		return v, nil
	}
	return json.Marshal(cliEventGridEvent{
		ID: p.newID(), Subject: cliSubject, EventType: cliType,
		EventTime: p.now().UTC().Format(time.RFC3339Nano), Data: v, DataVersion: "1.0",
	})
}

// hasMember reports whether v is a JSON object with the member name.
func hasMember(v json.RawMessage, name string) bool {
	if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}

// send posts events in batches and returns how many were published in how
// many requests, stopping at the first batch that fails.
func (p *publisher) send(ctx context.Context, t publishTarget, contentType string, events []json.RawMessage) (published, requests int, err error) {
	// The admin token stays with the admin API: publishing needs only the key.
	pub := *p.api
	pub.token = ""
	path := "/topics/" + url.PathEscape(t.topic) + "/api/events"
	for i := 0; i < len(events); i += p.batch {
		chunk := events[i:min(i+p.batch, len(events))]
		body, err := json.Marshal(chunk)
		if err != nil {
			return published, requests, fmt.Errorf("encode events: %w", err)
		}
		_, err = pub.do(ctx, apiRequest{
			method: http.MethodPost,
			path:   path,
			header: map[string]string{"Content-Type": contentType, "aeg-sas-key": t.key},
			body:   json.RawMessage(body),
		})
		if err != nil {
			return published, requests, p.sendError(t, err, i, len(chunk), len(events))
		}
		published += len(chunk)
		requests++
	}
	return published, requests, nil
}

// sendError says which batch failed (the n events from index first of
// total), why, and what was published before it.
func (p *publisher) sendError(t publishTarget, err error, first, n, total int) error {
	batch, batches := first/p.batch+1, (total+p.batch-1)/p.batch
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized && t.keyGiven:
			ae.Hint = fmt.Sprintf("check --key or $%s: it must be key1 or key2 of topic %s (`sluice topic keys %s`)", envTopicKey, t.topic, t.topic)
		case ae.Status == http.StatusUnauthorized:
			ae.Hint = ""
		case ae.Status == http.StatusRequestEntityTooLarge:
			ae.Hint = fmt.Sprintf("send fewer events per request with a smaller --batch (now %d)", p.batch)
		}
	} else if t.endpoint != "" && t.endpoint != p.api.server+"/topics/"+url.PathEscape(t.topic)+"/api/events" {
		err = fmt.Errorf("%w\n(the topic's advertised publish endpoint is %s)", err, t.endpoint)
	}
	done := "published before it: nothing"
	if first > 0 {
		done = fmt.Sprintf("published before it: %s in %d request", eventSpan(1, first), batch-1)
		if batch > 2 {
			done += "s"
		}
	}
	if first+n < total {
		done += "; not sent: " + eventSpan(first+n+1, total)
	}
	return fmt.Errorf("publish batch %d of %d (%s) to %s: %w\n%s", batch, batches, eventSpan(first+1, first+n), t.topic, err, done)
}

// eventSpan names events a to b, counting from 1.
func eventSpan(a, b int) string {
	if a == b {
		return fmt.Sprintf("event %d", a)
	}
	return fmt.Sprintf("events %d–%d", a, b)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
