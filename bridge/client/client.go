package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// Defaults of a Client.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultRetries  = 4
	DefaultMinWait  = 250 * time.Millisecond
	DefaultMaxWait  = 8 * time.Second
	defaultAgent    = "oidc-bridge-client"
	maxResponseBody = 4 << 20
)

// Client calls the admin API of one oidc-bridge with one admin token. It is
// safe for concurrent use.
type Client struct {
	// endpointErr is CheckEndpoint's verdict on the endpoint: every call
	// fails with it, before any connection.
	endpointErr error
	strictLint  bool
	base        string // endpoint without a trailing slash
	token       string
	http        *http.Client
	retries     int
	minWait     time.Duration
	maxWait     time.Duration
	userAgent   string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc (its
// Timeout bounds each attempt). The Client uses a copy of hc that follows
// no redirect, whatever hc's CheckRedirect.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds each attempt (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.http
		hc.Timeout = d
		c.http = &hc
	}
}

// WithRetries sets how many times a retryable call is retried (default
// DefaultRetries; 0 turns retries off).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithBackoff sets the first and the longest wait between attempts; a
// Retry-After longer than max is cut to max.
func WithBackoff(minWait, maxWait time.Duration) Option {
	return func(c *Client) { c.minWait, c.maxWait = minWait, max(minWait, maxWait) }
}

// WithUserAgent sets the User-Agent header, e.g. "terraform-provider-oidcbridge/1.2.3".
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithStrictLint makes issuer and mapping writes ask the bridge to refuse
// issuers and mappings with lint warnings (?lint=strict): they fail with a
// 400 naming the finding.
func WithStrictLint() Option { return func(c *Client) { c.strictLint = true } }

// New returns a Client of the bridge at endpoint (its base URL, e.g.
// https://bridge.example.com) authenticating with the admin token.
//
// An endpoint that CheckEndpoint refuses (plain http:// off loopback, or not
// an http(s) URL) makes every call fail with its error before any
// connection; callers that can report it earlier (the Terraform provider's
// configuration) call CheckEndpoint themselves. The Client follows no
// redirect: a 3xx answer fails the call with a *RedirectError, and nothing
// is sent to its Location.
func New(endpoint, token string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(endpoint, "/"),
		token:     token,
		http:      &http.Client{Timeout: DefaultTimeout},
		retries:   DefaultRetries,
		minWait:   DefaultMinWait,
		maxWait:   DefaultMaxWait,
		userAgent: defaultAgent,
	}
	for _, o := range opts {
		o(c)
	}
	_, c.endpointErr = CheckEndpoint(endpoint)
	c.http = NoRedirects(c.http)
	return c
}

// Endpoint returns the base URL the Client calls.
func (c *Client) Endpoint() string { return c.base }

// String names the endpoint, never the token.
func (c *Client) String() string { return "client.Client{endpoint: " + c.base + ", token: <redacted>}" }

// GoString is String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

// Error is an error answer of the API, or a response that is not one.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the contract's error code (not_found, conflict, ...).
	Code string
	// Message is the server's explanation, for a person.
	Message string
	// Field names the request field at fault, for invalid_request.
	Field string
	// RequestID ties an internal error to the server's log.
	RequestID string
	// Warnings are every lint finding of an issuer or mapping refused
	// under WithStrictLint; Field is the first one's.
	Warnings []api.Warning
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oidc-bridge: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports whether err is the API's 409.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// ListMappingsOptions filters ListMappings; the zero value lists every mapping.
type ListMappingsOptions struct {
	Issuer      string
	Provider    string
	EnabledOnly bool
}

// ListIssuers returns every issuer, ordered by name.
func (c *Client) ListIssuers(ctx context.Context) ([]api.Issuer, error) {
	var out api.IssuerList
	if err := c.do(ctx, http.MethodGet, "/v1/admin/issuers", nil, &out); err != nil {
		return nil, err
	}
	return out.Issuers, nil
}

// GetIssuer returns the issuer called name.
func (c *Client) GetIssuer(ctx context.Context, name string) (api.Issuer, error) {
	var out api.Issuer
	err := c.do(ctx, http.MethodGet, issuerPath(name), nil, &out)
	return out, err
}

// CreateIssuer registers is and returns it as stored.
func (c *Client) CreateIssuer(ctx context.Context, is api.Issuer) (api.Issuer, error) {
	var out api.Issuer
	err := c.do(ctx, http.MethodPost, c.lintQuery("/v1/admin/issuers"), writableIssuer(is), &out)
	return out, err
}

// UpdateIssuer replaces the issuer called name with is; is.Name may differ
// from name, which renames it.
func (c *Client) UpdateIssuer(ctx context.Context, name string, is api.Issuer) (api.Issuer, error) {
	var out api.Issuer
	err := c.do(ctx, http.MethodPut, c.lintQuery(issuerPath(name)), writableIssuer(is), &out)
	return out, err
}

// DeleteIssuer removes the issuer called name.
func (c *Client) DeleteIssuer(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, issuerPath(name), nil, nil)
}

// ListMappings returns the mappings that o selects, ordered by name.
func (c *Client) ListMappings(ctx context.Context, o ListMappingsOptions) ([]api.Mapping, error) {
	q := url.Values{}
	if o.Issuer != "" {
		q.Set("issuer", o.Issuer)
	}
	if o.Provider != "" {
		q.Set("provider", o.Provider)
	}
	if o.EnabledOnly {
		q.Set("enabled", "true")
	}
	p := "/v1/admin/mappings"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out api.MappingList
	if err := c.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return out.Mappings, nil
}

// GetMapping returns the mapping called name.
func (c *Client) GetMapping(ctx context.Context, name string) (api.Mapping, error) {
	var out api.Mapping
	err := c.do(ctx, http.MethodGet, mappingPath(name), nil, &out)
	return out, err
}

// CreateMapping creates m and returns it as stored (defaults filled in,
// warnings computed).
func (c *Client) CreateMapping(ctx context.Context, m api.Mapping) (api.Mapping, error) {
	var out api.Mapping
	err := c.do(ctx, http.MethodPost, c.lintQuery("/v1/admin/mappings"), writableMapping(m), &out)
	return out, err
}

// UpdateMapping replaces the mapping called name with m (omitted optional
// fields take their defaults); m.Name may differ from name, which renames
// it and keeps its quota counts and history.
func (c *Client) UpdateMapping(ctx context.Context, name string, m api.Mapping) (api.Mapping, error) {
	var out api.Mapping
	err := c.do(ctx, http.MethodPut, c.lintQuery(mappingPath(name)), writableMapping(m), &out)
	return out, err
}

// DeleteMapping removes the mapping called name.
func (c *Client) DeleteMapping(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, mappingPath(name), nil, nil)
}

// MappingUsage returns the quota counts of the mapping called name.
func (c *Client) MappingUsage(ctx context.Context, name string) (api.Usage, error) {
	var out api.Usage
	err := c.do(ctx, http.MethodGet, mappingPath(name)+"/usage", nil, &out)
	return out, err
}

func issuerPath(name string) string  { return "/v1/admin/issuers/" + url.PathEscape(name) }
func mappingPath(name string) string { return "/v1/admin/mappings/" + url.PathEscape(name) }

// writableIssuer drops the read-only fields, which the server ignores.
func writableIssuer(is api.Issuer) api.Issuer {
	is.CreatedAt, is.UpdatedAt = time.Time{}, time.Time{}
	is.Warnings = nil
	return is
}

func writableMapping(m api.Mapping) api.Mapping {
	m.CreatedAt, m.UpdatedAt = time.Time{}, time.Time{}
	m.Warnings = nil
	return m
}

// lintQuery adds ?lint=strict to an issuer or mapping write's path when
// asked.
func (c *Client) lintQuery(path string) string {
	if c.strictLint {
		return path + "?lint=strict"
	}
	return path
}

// do sends one call, with retries, and decodes a 2xx body into out (if
// not nil; a *[]byte receives the body as sent).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.call(ctx, method, path, in, out, callOptions{idempotent: method != http.MethodPost})
}

// callOptions are what sets a call apart from an admin call of its method.
type callOptions struct {
	// idempotent calls are retried on transport errors and 5xx answers.
	idempotent bool
	// noAdminToken sends no Authorization header (a job's calls that the
	// body authorizes, such as a revocation).
	noAdminToken bool
}

// call is do with its options.
func (c *Client) call(ctx context.Context, method, path string, in, out any, o callOptions) error {
	if c.endpointErr != nil {
		return c.endpointErr
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
	}
	idempotent := o.idempotent
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, method, path, body, !o.noAdminToken)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || !idempotent || attempt >= c.retries || !transient(err) {
				return fmt.Errorf("client: %s %s: %w", method, path, err)
			}
			wait = c.backoff(attempt)
		case resp.StatusCode == http.StatusTooManyRequests ||
			idempotent && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			if attempt >= c.retries {
				return readResponse(resp, out)
			}
			wait = c.backoff(attempt)
			if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				wait = min(max(ra, c.minWait), c.maxWait)
			}
			drain(resp)
		default:
			return readResponse(resp, out)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Client) send(ctx context.Context, method, path string, body []byte, auth bool) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if re := (*RedirectError)(nil); errors.As(err, &re) {
			return nil, re // says more than the *url.Error around it
		}
		// *url.Error names the URL, never the headers; keep it.
		return nil, err
	}
	return resp, nil
}

// transient reports whether a transport error may go away on retry: a
// timeout, a refused or reset connection. Bad URLs and TLS failures do not.
func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// backoff is exponential from minWait, capped at maxWait, with jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minWait << min(attempt, 16)
	if d <= 0 || d > c.maxWait {
		d = c.maxWait
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t), true
	}
	return 0, false
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
}

func readResponse(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return fmt.Errorf("client: read response: %w", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if raw, ok := out.(*[]byte); ok { // the body as sent, unread
			*raw = b
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("client: decode %d response: %w", resp.StatusCode, err)
		}
		return nil
	}
	e := &Error{Status: resp.StatusCode}
	var body api.Error
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Code, e.Message, e.Field, e.RequestID, e.Warnings = body.Error, body.Message, body.Field, body.RequestID, body.Warnings
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	return e
}

// ValidateIssuer has the bridge validate and lint is as CreateIssuer would,
// writing nothing (POST /v1/admin/issuers?dry_run=true): the issuer as it
// would be stored with its warnings, or the write's *Error. It never asks
// for ?lint=strict: the warnings come back in the object.
func (c *Client) ValidateIssuer(ctx context.Context, is api.Issuer) (api.Issuer, error) {
	var out api.Issuer
	err := c.do(ctx, http.MethodPost, "/v1/admin/issuers?dry_run=true", writableIssuer(is), &out)
	return out, err
}

// ValidateMapping has the bridge validate and lint m as CreateMapping
// would, writing nothing (POST /v1/admin/mappings?dry_run=true), under the
// rules of its issuer's kind, or the generic kind's when no issuer of that
// name is registered yet. Like ValidateIssuer, it never asks for
// ?lint=strict.
func (c *Client) ValidateMapping(ctx context.Context, m api.Mapping) (api.Mapping, error) {
	var out api.Mapping
	err := c.do(ctx, http.MethodPost, "/v1/admin/mappings?dry_run=true", writableMapping(m), &out)
	return out, err
}

// Explain asks the bridge what every mapping of a token's issuer says about
// a token or bare claims (POST /v1/admin/explain); nothing is issued or
// recorded. It returns the bridge's answer as sent, unchecked, to print as
// it is or to decode into an api.ExplainResponse. Like every POST, a call
// that failed in transit is not retried.
func (c *Client) Explain(ctx context.Context, req api.ExplainRequest) ([]byte, error) {
	var body []byte
	err := c.do(ctx, http.MethodPost, "/v1/admin/explain", req, &body)
	return body, err
}
