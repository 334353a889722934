package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

const (
	// clientEnvServer names the admin API's address when --server is not given.
	clientEnvServer = "SLUICE_SERVER"
	// clientEnvToken holds the admin token when --token is not given; it is
	// the variable `sluice serve` reads too.
	clientEnvToken = "SLUICE_TOKEN"
	// clientDefaultServer is where `sluice serve` listens by default.
	clientDefaultServer = "http://127.0.0.1:8080"
	// clientTimeout bounds one request, reading the answer included.
	clientTimeout = 30 * time.Second
	// clientMaxAnswer bounds what is read of an answer; the API's largest,
	// a list, is far smaller.
	clientMaxAnswer = 64 << 20
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// clientConfig is how an admin command reaches the admin API and prints
// what it answers. The parent commands (topic, sub) carry its flags.
type clientConfig struct {
	Server string
	Token  string
	Output string
}

func (cfg *clientConfig) registerFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&cfg.Server, "server", "", "admin API URL (default $"+clientEnvServer+", else "+clientDefaultServer+")")
	f.StringVar(&cfg.Token, "token", "", "admin token, sent as \"Authorization: Bearer <token>\" (default $"+clientEnvToken+")")
	f.StringVarP(&cfg.Output, "output", "o", outputTable, "output format: "+outputTable+" or "+outputJSON)
}

// resolve fills in what the flags left open from the environment.
func (cfg *clientConfig) resolve(getenv func(string) string) {
	if cfg.Server == "" {
		cfg.Server = getenv(clientEnvServer)
	}
	if cfg.Server == "" {
		cfg.Server = clientDefaultServer
	}
	if cfg.Token == "" {
		cfg.Token = getenv(clientEnvToken)
	}
}

func (cfg *clientConfig) validate() error {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--server %q: want an http or https URL such as %s", cfg.Server, clientDefaultServer)
	}
	if cfg.Output != outputTable && cfg.Output != outputJSON {
		return fmt.Errorf("-o/--output %q: want %s or %s", cfg.Output, outputTable, outputJSON)
	}
	return nil
}

// client resolves and checks cfg, then returns a client for it.
func (cfg *clientConfig) client(getenv func(string) string) (*apiClient, error) {
	cfg.resolve(getenv)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &apiClient{
		server: strings.TrimRight(cfg.Server, "/"),
		token:  cfg.Token,
		http:   &http.Client{Timeout: clientTimeout},
	}, nil
}

// apiClient speaks JSON to the admin API (see package adminapi).
type apiClient struct {
	server string // without a trailing slash
	token  string
	http   *http.Client
}

// apiRequest is one call of the admin API.
type apiRequest struct {
	method string
	path   string            // from /api/, names already escaped
	header map[string]string // extra headers, e.g. If-None-Match
	body   any               // encoded as JSON; json.RawMessage is sent as is; nil: no body
}

// apiAnswer is a 2xx answer.
type apiAnswer struct {
	status int
	body   []byte
}

// decode decodes the answer's JSON into v.
func (a apiAnswer) decode(v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("the server's answer is not what sluice sends (is --server a sluice?): %w", err)
	}
	return nil
}

// do sends req and returns a 2xx answer, or an error a person can act on:
// an *apiError for an Event Grid error body, else a network or protocol
// error that names the server.
func (c *apiClient) do(ctx context.Context, req apiRequest) (apiAnswer, error) {
	var body io.Reader
	if req.body != nil {
		data, err := json.Marshal(req.body)
		if err != nil {
			return apiAnswer{}, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.server+req.path, body)
	if err != nil {
		return apiAnswer{}, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	hr.Header.Set("Accept", "application/json")
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return apiAnswer{}, c.networkError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, clientMaxAnswer))
	if err != nil {
		return apiAnswer{}, c.networkError(err)
	}
	if resp.StatusCode/100 != 2 {
		return apiAnswer{}, c.answerError(req, resp, data)
	}
	return apiAnswer{status: resp.StatusCode, body: data}, nil
}

// networkError explains a request that got no answer.
func (c *apiClient) networkError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused; is `sluice serve` running at that address? (set --server or $%s)",
			c.server, clientEnvServer)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no answer from %s within %s: %w", c.server, clientTimeout, err)
	default:
		return fmt.Errorf("cannot reach %s: %w", c.server, err)
	}
}

// answerError turns a non-2xx answer into an error: an *apiError when it
// has Event Grid's error body, else one naming the status.
func (c *apiClient) answerError(req apiRequest, resp *http.Response, data []byte) error {
	var b struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &b) != nil || b.Error == nil || b.Error.Message == "" {
		snippet := strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		if snippet != "" {
			snippet = ": " + snippet
		}
		return fmt.Errorf("%s %s%s answered %s (not a sluice error; is --server a sluice?)%s",
			req.method, c.server, req.path, resp.Status, snippet)
	}
	e := &apiError{Status: resp.StatusCode, Code: b.Error.Code, Message: b.Error.Message}
	for _, d := range b.Error.Details {
		e.Details = append(e.Details, d.Message)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if c.token == "" {
			e.Hint = fmt.Sprintf("pass --token or set $%s to the admin token `sluice serve` printed when it created it", clientEnvToken)
		} else {
			e.Hint = fmt.Sprintf("check --token or $%s: it must be the admin token of the sluice at %s", clientEnvToken, c.server)
		}
	}
	return e
}

// apiError is an error answer of the admin API, in Event Grid's shape.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details []string // the details' messages
	Hint    string   // what to do about it, when the CLI knows
}

// Error is the message, then each detail on its own line, then the hint.
// A lone detail the message already ends with (one failed field is in
// both) is not repeated.
func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, d := range e.Details {
		if d == "" || (len(e.Details) == 1 && strings.HasSuffix(e.Message, d)) {
			continue
		}
		b.WriteString("\n  ")
		b.WriteString(d)
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}
