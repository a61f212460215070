package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

const (
	explainTimeout = 60 * time.Second
	// maxExplainInput bounds a token or claims file; the bridge refuses
	// bodies over 64 KiB anyway.
	maxExplainInput = 64 << 10
)

func (a *app) explainCmd() *cobra.Command {
	var (
		bridgeURL, adminToken       string
		tokenFile, tokenEnv         string
		claimsFile, issuer, mapName string
		provider                    string
		asJSON                      bool
	)
	cmd := &cobra.Command{
		Use:   "explain (--token-file F | --token-env VAR | --claims-file F --issuer NAME)",
		Short: "Explain which mappings admit a token, and why the others do not",
		Long: `Ask the bridge what every mapping of a token's issuer says about the token:
admitted or not, which condition failed and the value the token carries, and
what an exchange would decide. Nothing is issued or recorded.

A token (--token-file, "-" for standard input, or --token-env) is verified as
the exchange verifies it. Bare claims (--claims-file, a token's JSON payload,
with --issuer naming the registered issuer) are read as that issuer's tokens
are, but neither signature nor times nor audience are checked.

The bridge's URL and an admin token (scope read) come from --bridge-url and
--admin-token, or from OIDC_BRIDGE_URL and OIDC_BRIDGE_ADMIN_TOKEN (the old
names OIDC_BRIDGE_ENDPOINT and OIDC_BRIDGE_TOKEN are deprecated: read with a
warning, for one release). BRIDGE_ADMIN_TOKEN is the server's bootstrap
token and is never read here. The URL must be https://; plain http:// only
on localhost, 127.0.0.1 or [::1]; no redirect is followed.

Exit status:
  0  the bridge explained the token, whatever its decision (admitted or not)
  1  the explanation failed: the bridge refused the request or could not be
     reached, or the token or claims could not be read
  2  usage: a flag or argument is wrong, the URL or admin token is missing,
     or the URL is not https (nor http on loopback)`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := environMap(a.environ)
			if bridgeURL == "" {
				bridgeURL = a.clientEnv(env, envBridgeURL, deprecatedEnvEndpoint)
			}
			if adminToken == "" {
				adminToken = a.clientEnv(env, envAdminToken, deprecatedEnvToken)
			}
			req, err := explainRequest(cmd.InOrStdin(), env, tokenFile, tokenEnv, claimsFile, issuer)
			if err != nil {
				return err
			}
			req.Mapping, req.Provider = mapName, provider
			switch {
			case bridgeURL == "":
				return usageError{fmt.Errorf("the bridge's URL is required: --bridge-url or %s", envBridgeURL)}
			case adminToken == "":
				return usageError{fmt.Errorf("an admin token is required: --admin-token or %s", envAdminToken)}
			}
			body, err := postExplain(cmd.Context(), a.httpClient(explainTimeout), bridgeURL, adminToken, req)
			if err != nil {
				return err
			}
			if asJSON {
				var out bytes.Buffer
				if err := json.Indent(&out, body, "", "  "); err != nil {
					return fmt.Errorf("explain: the bridge answered malformed JSON: %w", err)
				}
				out.WriteByte('\n')
				_, err := a.stdout.Write(out.Bytes())
				return err
			}
			var res api.ExplainResponse
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("explain: the bridge answered malformed JSON: %w", err)
			}
			return renderExplanation(a.stdout, &res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&bridgeURL, "bridge-url", "", "the bridge's base URL (default $"+envBridgeURL+")")
	f.StringVar(&adminToken, "admin-token", "", "an admin token with the read scope (default $"+envAdminToken+"; prefer the variable: flags show in ps)")
	f.StringVar(&tokenFile, "token-file", "", `a file holding the pipeline token to explain ("-": standard input)`)
	f.StringVar(&tokenEnv, "token-env", "", "a variable holding the pipeline token to explain")
	f.StringVar(&claimsFile, "claims-file", "", `a JSON file of bare claims to explain ("-": standard input); needs --issuer`)
	f.StringVar(&issuer, "issuer", "", "the registered issuer of the bare claims")
	f.StringVar(&mapName, "mapping", "", "explain only this mapping, and decide as an exchange naming it")
	f.StringVar(&provider, "provider", "", "only mappings of this provider (aws, gcp, azure, jwt)")
	f.BoolVar(&asJSON, "json", false, "print the bridge's JSON answer")
	return cmd
}

// explainRequest builds the request body from exactly one source of a token
// or claims.
func explainRequest(stdin io.Reader, env map[string]string, tokenFile, tokenEnv, claimsFile, issuer string) (api.ExplainRequest, error) {
	var req api.ExplainRequest
	n := 0
	for _, s := range []string{tokenFile, tokenEnv, claimsFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return req, usageError{errors.New("give exactly one of --token-file, --token-env and --claims-file")}
	}
	if (claimsFile != "") != (issuer != "") {
		return req, usageError{errors.New("--issuer goes with --claims-file, and --claims-file needs it")}
	}
	switch {
	case tokenFile != "":
		b, err := readInput(stdin, tokenFile)
		if err != nil {
			return req, err
		}
		req.Token = strings.TrimSpace(string(b))
	case tokenEnv != "":
		req.Token = strings.TrimSpace(env[tokenEnv])
		if req.Token == "" {
			return req, fmt.Errorf("explain: $%s is empty or unset", tokenEnv)
		}
	default:
		b, err := readInput(stdin, claimsFile)
		if err != nil {
			return req, err
		}
		if !json.Valid(b) {
			return req, fmt.Errorf("explain: %s is not JSON", claimsFile)
		}
		req.Issuer, req.Claims = issuer, json.RawMessage(bytes.TrimSpace(b))
	}
	if req.Token == "" && req.Claims == nil {
		return req, errors.New("explain: the token file is empty")
	}
	return req, nil
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxExplainInput+1))
	if err != nil {
		return nil, fmt.Errorf("explain: read %s: %w", name, err)
	}
	if len(b) > maxExplainInput {
		return nil, fmt.Errorf("explain: %s is larger than %d bytes", name, maxExplainInput)
	}
	return b, nil
}

// postExplain calls POST /v1/admin/explain through bridge/client over hc
// (which follows no redirect), without retries, and returns the 200 body;
// any other answer becomes an error carrying the bridge's code and
// message. base must be https, or plain http on loopback: the admin token
// must not cross the network in clear.
func postExplain(ctx context.Context, hc *http.Client, base, adminToken string, req api.ExplainRequest) ([]byte, error) {
	if _, err := client.CheckEndpoint(base); err != nil {
		return nil, usageError{err}
	}
	c := client.New(base, adminToken, client.WithHTTPClient(hc), client.WithRetries(0), client.WithUserAgent("oidc-bridge-cli"))
	body, err := c.Explain(ctx, req)
	if err == nil {
		return body, nil
	}
	var ce *client.Error
	var re *client.RedirectError
	var ue *url.Error
	switch {
	case errors.As(err, &ce) && ce.Code == "":
		return nil, fmt.Errorf("explain: the bridge answered %d %s", ce.Status, http.StatusText(ce.Status))
	case errors.As(err, &ce):
		msg := fmt.Sprintf("explain: %d %s: %s", ce.Status, clean(ce.Code), clean(ce.Message))
		// The bridge's error bodies name the request id for 5xx only; the
		// client also reads it from every answer's X-Request-Id.
		if ce.RequestID != "" && ce.Status >= 500 {
			msg += " (request id " + clean(ce.RequestID) + ")"
		}
		return nil, errors.New(msg)
	case errors.As(err, &re):
		return nil, fmt.Errorf("explain: %w", re)
	case errors.As(err, &ue):
		return nil, fmt.Errorf("explain: %w", ue)
	}
	return nil, fmt.Errorf("explain: %w", err)
}

// renderExplanation prints the claims, one block per mapping (its decision
// and each condition: patterns against the value seen) and the decision.
func renderExplanation(w io.Writer, res *api.ExplainResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	how := "bare claims, not verified"
	if res.Verified {
		how = "token verified"
	}
	fmt.Fprintf(tw, "issuer %s (%s)\n", clean(res.Issuer), how)
	if p := res.IssuerPolicy; p.ReplayScope != "" {
		once := "once in all"
		if p.ReplayScope == "token_mapping" {
			once = "once per mapping"
		}
		fmt.Fprintf(tw, "  a token is exchanged %s (replay_scope %s); accepted up to %ds old, %ds long\n",
			once, clean(p.ReplayScope), p.MaxTokenAgeSeconds, p.MaxTokenLifetimeSeconds)
		if p.Kind != "" {
			fmt.Fprintf(tw, "  kind %s", clean(p.Kind))
			if p.AudienceHint != "" {
				fmt.Fprintf(tw, "; a job asks for the bridge's audience with: %s", clean(p.AudienceHint))
			}
			fmt.Fprintln(tw)
		}
		if p.KeySource != "" && p.KeySource != "discovery" {
			fmt.Fprintf(tw, "  keys from its %s\n", clean(p.KeySource))
		}
		for _, k := range p.Keys {
			fmt.Fprintf(tw, "  key kid %s kty %s alg %s\n", clean(k.KID), clean(k.KTY), clean(k.Alg))
		}
	}
	c := res.Claims
	for _, kv := range [][2]string{
		{"repository", c.Repository}, {"repository_id", c.RepositoryID}, {"ref", c.Ref}, {"environment", c.Environment},
		{"event_name", c.EventName}, {"workflow_ref", c.WorkflowRef}, {"actor", c.Actor}, {"run_id", c.RunID},
	} {
		v := kv[1]
		if v == "" {
			v = "(absent)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", kv[0], clean(v))
	}
	fmt.Fprintln(tw)
	if len(res.Mappings) == 0 {
		fmt.Fprintln(tw, "no mappings")
	}
	for _, e := range res.Mappings {
		renderMapping(tw, &e)
	}
	d := res.Decision
	fmt.Fprintf(tw, "\ndecision: %s", clean(d.Outcome))
	if d.Mapping != "" {
		fmt.Fprintf(tw, " (%s)", clean(d.Mapping))
	}
	fmt.Fprintf(tw, ": %s\n", clean(d.Message))
	return tw.Flush()
}

func renderMapping(w io.Writer, e *api.Explanation) {
	var tags []string
	if e.Provider != "" {
		tags = append(tags, e.Provider)
	}
	if !e.Enabled {
		tags = append(tags, "disabled")
	}
	if e.Mode != "" && e.Mode != api.ModeEnforce {
		tags = append(tags, e.Mode+" mode")
	}
	verdict := "admitted"
	if !e.Admitted {
		verdict = "refused (" + e.Reason + ")"
		if e.Detail != "" {
			verdict += ": " + e.Detail
		}
	}
	fmt.Fprintf(w, "%s %s [%s] %s\n", mark(e.Admitted), clean(e.Mapping), clean(strings.Join(tags, ", ")), clean(verdict))
	for _, r := range e.Conditions {
		v := strconv.Quote(r.Value)
		switch {
		case !r.Present:
			v = "(absent)"
		case r.ValueType != "" && r.ValueType != api.TypeString:
			// A typed claim: its JSON text and type, never quoted as if a string.
			v = r.Value + " (" + r.ValueType + ")"
		}
		patterns := strings.Join(r.Patterns, ", ")
		if r.Type != "" && r.Type != api.TypeString {
			patterns += " (" + r.Type + ")"
		}
		fmt.Fprintf(w, "    %s %s\t%s\t%s\n", mark(r.Matched), clean(r.Condition), clean(patterns), clean(v))
	}
	switch {
	case e.TargetError != "":
		fmt.Fprintf(w, "    ✗ target\t%s\n", clean(e.TargetError))
	case len(e.ResolvedTarget) > 0:
		fmt.Fprintf(w, "    → target\t%s\n", clean(string(e.ResolvedTarget)))
	}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// clean makes text from the bridge safe for a terminal (client.Printable).
func clean(s string) string { return client.Printable(s) }

// environMap reads KEY=VALUE pairs; the last of a repeated key wins, as
// with os.Getenv.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
