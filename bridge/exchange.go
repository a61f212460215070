package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
)

// Verifier verifies pipeline tokens (identity.Verifier).
type Verifier interface {
	Verify(ctx context.Context, rawToken string) (*identity.Claims, error)
}

// Ledger records exchange attempts (ledger.Ledger).
type Ledger interface {
	Reserve(ctx context.Context, a ledger.Attempt) (ledger.Reservation, error)
	Complete(ctx context.Context, r ledger.Reservation, credentialID string, expiresAt time.Time) error
	Fail(ctx context.Context, r ledger.Reservation, errorCode string) error
	Indeterminate(ctx context.Context, r ledger.Reservation) error
	Deny(ctx context.Context, a ledger.Attempt, errorCode string) (string, error)
	RecordAudit(ctx context.Context, a ledger.Attempt, admitted bool, reason string) (string, error)
}

const (
	// exchangeTimeout bounds one exchange; defaultMintTimeout the cloud
	// call in it.
	exchangeTimeout    = 30 * time.Second
	defaultMintTimeout = 20 * time.Second
	// recordTimeout bounds a ledger write that must happen even when the
	// client has gone away.
	recordTimeout = 10 * time.Second
	// defaultDuration is the credential lifetime when the request names none
	// (capped by the mapping's maximum).
	defaultDuration = 3600
)

// exchange is POST /v1/exchange: verify, select, reserve, mint, record,
// respond — in that order, each step failing closed.
func (s *Server) exchange(c echo.Context) error {
	x := &exchangeRun{s: s, c: c, start: time.Now()}
	raw, _ := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
	res, err := x.exec(raw, func() (api.ExchangeRequest, error) {
		var req api.ExchangeRequest
		if err := decodeOptional(c, &req); err != nil {
			return req, err
		}
		return req, checkExchangeRequest(&req)
	})
	if err != nil {
		return err
	}
	wire, err := credentialsBody(res.cred.Body)
	if err != nil {
		return err
	}
	body, err := json.Marshal(wire)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.ExchangeResponse{IssuanceID: res.issuance, Mapping: res.mapping.Name,
		Provider: res.mapping.Provider, ExpiresAt: res.cred.ExpiresAt.UTC(), Credentials: body})
}

// exchangeRun holds what one exchange has learnt, for its log line.
type exchangeRun struct {
	s        *Server
	c        echo.Context
	start    time.Time
	claims   *identity.Claims
	mapping  string
	provider string
	issuance string
	credID   string
	reason   string
	// bearerOnly refuses mappings whose credential is not a bearer token
	// (aws), before anything is reserved or minted: the token-exchange
	// endpoint can only return a single token.
	bearerOnly bool
	// accept, when set, refuses a selected mapping this endpoint cannot
	// serve as asked (RFC 8693's requested_token_type), before anything is
	// reserved or minted; the refusal is recorded.
	accept func(*mapping.Mapping) error
	// audits are the issuer's audit-mode mappings: evaluated and recorded,
	// never issuing.
	audits []mapping.Mapping
	// stages are the stages run so far and how long each took, and
	// decisions what each mapping considered decided, for the log line.
	stages    []stageTime
	decisions []decision
}

type stageTime struct {
	name string
	took time.Duration
}

// decision is a mapping's answer to the token: reason "" admits, else
// the mapping package's reason; audit marks an audit-mode mapping.
type decision struct {
	mapping, reason string
	audit           bool
}

// exchanged is a recorded issuance.
type exchanged struct {
	issuance string
	mapping  *mapping.Mapping
	cred     providers.Credential
}

// exec runs one exchange of the raw pipeline token; parse reads the
// request's parameters once the token has verified (so that a bad request
// with a good token is recorded). It counts and logs the outcome.
func (x *exchangeRun) exec(raw string, parse func() (api.ExchangeRequest, error)) (*exchanged, error) {
	ctx, cancel := context.WithTimeout(x.c.Request().Context(), exchangeTimeout)
	defer cancel()
	res, err := x.run(ctx, raw, parse)
	outcome, code, field := x.outcome(err), "ok", ""
	if err != nil {
		body := classify(err).body
		code, field = body.Error, body.Field
	}
	x.s.metrics.observeExchange(exchangeResult{provider: x.provider, mapping: x.mapping, outcome: outcome,
		code: code, field: field, elapsed: time.Since(x.start)})
	x.annotate(ctx, outcome, code)
	x.log(err)
	return res, err
}

// stage starts one stage of the exchange: a span, child of the request's,
// and a timer. The returned func ends it with the stage's error (nil when
// it did its work, though the exchange may still be refused).
func (x *exchangeRun) stage(ctx context.Context, name string) (context.Context, func(error)) {
	ctx, span := x.s.tracer.Start(ctx, name)
	start := time.Now()
	return ctx, func(err error) {
		took := time.Since(start)
		x.s.metrics.stageDuration.WithLabelValues(name).Observe(took.Seconds())
		x.stages = append(x.stages, stageTime{name: name, took: took})
		if err != nil {
			span.SetStatus(codes.Error, classify(err).body.Error)
		}
		span.End()
	}
}

// annotate puts the exchange's result on the request's span: identifiers
// of the bridge's own, nothing from the token but its issuer's name.
func (x *exchangeRun) annotate(ctx context.Context, outcome, code string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("oidc_bridge.outcome", outcome), attribute.String("oidc_bridge.code", code)}
	if x.claims != nil {
		attrs = append(attrs, attribute.String("oidc_bridge.issuer", x.claims.IssuerName))
	}
	for _, kv := range [][2]string{{"oidc_bridge.mapping", x.mapping}, {"oidc_bridge.provider", x.provider}, {"oidc_bridge.issuance_id", x.issuance}} {
		if kv[1] != "" {
			attrs = append(attrs, attribute.String(kv[0], kv[1]))
		}
	}
	span.SetAttributes(attrs...)
}

// auditWriteFailed counts a failed ledger write of the exchange.
func (x *exchangeRun) auditWriteFailed(op string) {
	x.s.metrics.auditFailures.WithLabelValues(op).Inc()
}

func (x *exchangeRun) run(ctx context.Context, raw string, parse func() (api.ExchangeRequest, error)) (*exchanged, error) {
	s, c := x.s, x.c
	if ok, wait := s.limiter.allow(clientKey(c.RealIP())); !ok {
		return nil, rateLimited(wait)
	}
	if raw == "" {
		x.reason = "missing_token"
		return nil, tokenError(api.CodeInvalidToken, "send the pipeline's OIDC token as `Authorization: Bearer <token>`")
	}
	vctx, end := x.stage(ctx, stageVerify)
	claims, err := s.opts.Verifier.Verify(vctx, raw)
	end(err)
	if err != nil {
		x.reason = identity.Reason(err)
		s.metrics.verifyFailures.WithLabelValues(x.reason).Inc()
		return nil, err
	}
	x.claims = claims
	attempt := ledger.Attempt{Claims: claims, ClientIP: clientAddr(c), UserAgent: c.Request().UserAgent()}
	if reason, err := s.issuerAllow(claims); err != nil {
		x.reason = reason
		return nil, x.deny(ctx, attempt, err)
	}

	m, refused, err := x.choose(ctx, &attempt, parse)
	if err != nil {
		if !refused {
			return nil, err // the store failed: nothing to record it in
		}
		return nil, x.deny(ctx, attempt, err)
	}

	rsctx, end := x.stage(ctx, stageReserve)
	res, err := s.opts.Ledger.Reserve(rsctx, attempt)
	end(err)
	if err != nil {
		if id, ok := ledger.IssuanceID(err); ok {
			x.issuance = id
			return nil, withIssuance(err, id)
		}
		x.auditWriteFailed(opReserve)
		return nil, err
	}
	x.issuance = res.ID

	mctx, end := x.stage(ctx, stageMint)
	cred, err := x.mint(mctx, m, res, attempt.Duration)
	end(err)
	if err != nil {
		x.recordMintFailure(ctx, res, err)
		return nil, withIssuance(err, res.ID)
	}
	x.credID = cred.ID

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	rctx, end = x.stage(rctx, stageRecord)
	err = s.opts.Ledger.Complete(rctx, res, cred.ID, cred.ExpiresAt)
	end(err)
	var revoked *ledger.RevokedError
	if errors.As(err, &revoked) {
		// An admin revoked the issuance while it was minted: the
		// credential is recorded (issued, revoked, revoked_in_flight) but
		// must not reach the client. Its id goes to the log so that
		// operators can follow it at the cloud.
		x.reason = "revoked_in_flight"
		s.log.WarnContext(ctx, "exchange: issuance revoked while its credential was minted; withheld from the client",
			"issuance_id", res.ID, "credential_id", cred.ID, "mapping", m.Name,
			"revoked_by", revoked.RevokedBy, "revoked_at", revoked.RevokedAt.UTC())
		return nil, withIssuance(err, res.ID)
	}
	if err != nil {
		// The credential exists at the cloud but its issuance is not
		// durably recorded: it must not reach the client. Its id goes to
		// the log and a metric so that operators can revoke it; the
		// pending row becomes `unknown` when the sweeper runs.
		x.auditWriteFailed(opComplete)
		s.metrics.unrecorded.Inc()
		s.log.ErrorContext(ctx, "exchange: issued credential not recorded; withheld from the client",
			"issuance_id", res.ID, "credential_id", cred.ID, "mapping", m.Name, "err", err)
		return nil, withIssuance(fmt.Errorf("%w: %w", ledger.ErrUnavailable, err), res.ID)
	}
	return &exchanged{issuance: res.ID, mapping: m, cred: cred}, nil
}

// choose is the select stage: it reads the request, selects the mapping
// that admits the token, records the audit-mode mappings' decisions and
// settles the credential's lifetime, completing a (mapping, duration,
// quota). An error with refused set is a refusal of the request, to be
// recorded; without, the store failed.
func (x *exchangeRun) choose(ctx context.Context, a *ledger.Attempt, parse func() (api.ExchangeRequest, error)) (m *mapping.Mapping, refused bool, err error) {
	ctx, end := x.stage(ctx, stageSelect)
	defer func() { end(err) }()
	req, err := parse()
	// The name the request gave, recorded as given (the ledger cleans and
	// bounds it) even when the request is refused, a bad name included.
	a.RequestedMapping = req.Mapping
	if err != nil {
		return nil, true, err
	}
	x.provider = req.Provider

	m, err = x.selectMapping(ctx, &req)
	x.recordAudits(ctx, *a)
	if err != nil {
		var re *requestError
		if m != nil {
			// The named mapping exists and refused: its row names it.
			a.MappingID, a.Mapping, a.Provider, a.Target = m.ID, m.Name, m.Provider, m.Target
		}
		return nil, errors.As(err, &re), err
	}
	x.mapping, x.provider = m.Name, m.Provider
	a.MappingID, a.Mapping, a.Provider, a.Target = m.ID, m.Name, m.Provider, m.Target
	if x.bearerOnly && m.Provider == aws.Name {
		x.reason = "not_a_bearer_token"
		return nil, true, noMatch(fmt.Sprintf(
			"mapping %q issues AWS credentials, which are not a single bearer token; use POST /v1/exchange", m.Name))
	}
	if x.accept != nil {
		if err := x.accept(m); err != nil {
			return nil, true, err
		}
	}
	dur, err := requestDuration(&req, m)
	if err != nil {
		return nil, true, err
	}
	a.Duration = dur
	if m.Quota != nil {
		a.PerHour, a.PerJob = m.Quota.PerHour, m.Quota.PerJob
	}
	return m, false, nil
}

// recordAudits records what each audit-mode mapping of the issuer would
// have decided for this token. They never issue and never change the
// exchange's own answer; a failure to record them is logged, not fatal.
func (x *exchangeRun) recordAudits(ctx context.Context, base ledger.Attempt) {
	if len(x.audits) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	for i := range x.audits {
		m := &x.audits[i]
		ok, reason := m.Admits(x.claims)
		x.decisions = append(x.decisions, decision{mapping: m.Name, reason: reason, audit: true})
		a := base
		a.MappingID, a.Mapping, a.Provider, a.Target = m.ID, m.Name, m.Provider, m.Target
		if _, err := x.s.opts.Ledger.RecordAudit(rctx, a, ok, reason); err != nil {
			x.auditWriteFailed(opRecordAudit)
			x.s.log.ErrorContext(ctx, "exchange: record an audit-mode decision", "mapping", m.Name, "err", err)
		}
	}
}

// recordMintFailure records a failed mint, even if the client has gone.
// Failed releases the token for a retry, so it is recorded only when the
// cloud certainly issued nothing. After an indeterminate failure (the
// request may have reached the cloud, no answer came back) the row becomes
// unknown at once and the token stays spent: one cloud call per issuance
// record, and never a second credential for the same token. If a write
// fails, the row stays pending and the sweeper marks it unknown once a
// credential would have expired.
func (x *exchangeRun) recordMintFailure(ctx context.Context, res ledger.Reservation, err error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	rctx, end := x.stage(rctx, stageRecord)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Indeterminate {
		x.s.log.WarnContext(ctx, "exchange: the cloud may have issued a credential that was lost; issuance recorded unknown",
			"issuance_id", res.ID, "code", pe.Code)
		uerr := x.s.opts.Ledger.Indeterminate(rctx, res)
		end(uerr)
		if uerr != nil {
			x.auditWriteFailed(opIndeterminate)
			x.s.log.ErrorContext(ctx, "exchange: record an indeterminate mint; the row stays pending", "issuance_id", res.ID, "err", uerr)
		}
		return
	}
	ferr := x.s.opts.Ledger.Fail(rctx, res, api.CodeProviderError)
	end(ferr)
	if ferr != nil {
		x.auditWriteFailed(opFail)
		x.s.log.ErrorContext(ctx, "exchange: record failed mint", "issuance_id", res.ID, "err", ferr)
	}
}

// selectMapping finds the mapping that admits the token: the named one, or
// the single one among the issuer's enabled mappings (of the provider, if
// given). When the request named a mapping of the issuer that refuses the
// token (its conditions, audit mode), that mapping is returned with the
// refusal, for the record.
func (x *exchangeRun) selectMapping(ctx context.Context, req *api.ExchangeRequest) (*mapping.Mapping, error) {
	all, err := x.s.opts.Store.ListMappings(ctx, mapping.Filter{Issuer: x.claims.IssuerName, Provider: req.Provider, EnabledOnly: true})
	if err != nil {
		return nil, err
	}
	var ms []mapping.Mapping // the mappings that may issue
	for _, m := range all {
		if m.Mode == mapping.ModeAudit {
			x.audits = append(x.audits, m)
		} else {
			ms = append(ms, m)
		}
	}
	if req.Mapping != "" {
		for _, a := range x.audits {
			if a.Name == req.Mapping {
				x.decisions = append(x.decisions, decision{mapping: a.Name, reason: "audit_mode"})
				x.reason = "audit_mode"
				return &a, noMatch(fmt.Sprintf("mapping %q is in audit mode: it records what it would decide but issues nothing", a.Name))
			}
		}
		for i := range ms {
			if ms[i].Name != req.Mapping {
				continue
			}
			ok, reason := ms[i].Admits(x.claims)
			x.decisions = append(x.decisions, decision{mapping: ms[i].Name, reason: reason})
			if !ok {
				x.reason = reason
				return &ms[i], noMatch(fmt.Sprintf("mapping %q does not admit this token (%s)", req.Mapping, reason))
			}
			return &ms[i], nil
		}
		x.reason = "unknown_mapping"
		return nil, noMatch(fmt.Sprintf("no enabled mapping %q of this token's issuer%s", req.Mapping, providerNote(req.Provider)))
	}
	admitted, reasons := mapping.Evaluate(ms, x.claims)
	for i := range ms {
		x.decisions = append(x.decisions, decision{mapping: ms[i].Name, reason: reasons[i]})
	}
	switch len(admitted) {
	case 0:
		x.reason = "no_mapping_admits"
		return nil, noMatch(fmt.Sprintf("no enabled mapping of issuer %q%s admits this token", x.claims.IssuerName, providerNote(req.Provider)))
	case 1:
		return &admitted[0], nil
	}
	names := make([]string, len(admitted))
	for i, m := range admitted {
		names[i] = m.Name
	}
	x.reason = "ambiguous"
	return nil, &requestError{status: http.StatusConflict, body: api.Error{Error: api.CodeAmbiguousMapping,
		Message: fmt.Sprintf("several mappings admit this token: %s; name one in the request's \"mapping\" field", strings.Join(names, ", "))}}
}

func (x *exchangeRun) mint(ctx context.Context, m *mapping.Mapping, res ledger.Reservation, dur time.Duration) (providers.Credential, error) {
	p, ok := x.s.opts.Providers[m.Provider]
	if !ok {
		return providers.Credential{}, &providers.Error{Provider: m.Provider, Code: "ProviderNotConfigured", Err: providers.ErrUnavailable}
	}
	mctx, cancel := context.WithTimeout(ctx, x.s.opts.MintTimeout)
	defer cancel()
	mctx, span := x.s.tracer.Start(mctx, "mint "+m.Provider, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("oidc_bridge.provider", m.Provider), attribute.String("oidc_bridge.mapping", m.Name)))
	defer span.End()
	cred, err := x.s.breakers.mint(m.Provider, func() (providers.Credential, error) {
		return p.Mint(mctx, providers.Request{IssuanceID: res.ID, Mapping: m.Name, Target: m.Target, Claims: x.claims, Duration: dur})
	})
	if err != nil {
		// The provider's code (AccessDenied, Timeout), never its message,
		// which may name accounts.
		var pe *providers.Error
		desc := api.CodeProviderError
		if errors.As(err, &pe) {
			desc = pe.Code
			span.SetAttributes(attribute.Bool("oidc_bridge.indeterminate", pe.Indeterminate))
		}
		span.SetStatus(codes.Error, desc)
	}
	return cred, err
}

// deny records a refusal of a verified token and returns cause carrying the
// recorded issuance id. If the record cannot be written, the answer is 503.
func (x *exchangeRun) deny(ctx context.Context, a ledger.Attempt, cause error) error {
	body := classify(cause).body
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	rctx, end := x.stage(rctx, stageRecord)
	id, err := x.s.opts.Ledger.Deny(rctx, a, body.Error)
	end(err)
	if err != nil {
		x.auditWriteFailed(opDeny)
		x.s.log.ErrorContext(ctx, "exchange: record denial", "code", body.Error, "err", err)
		return fmt.Errorf("%w: record denial: %w", ledger.ErrUnavailable, err)
	}
	x.issuance = id
	return withIssuance(cause, id)
}

func checkExchangeRequest(req *api.ExchangeRequest) error {
	if req.Provider != "" && !mapping.KnownProvider(req.Provider) {
		return invalid("provider", "provider: must be one of "+strings.Join(mapping.Providers().Names(), ", "))
	}
	if req.Mapping != "" && !mapping.ValidName(req.Mapping) {
		return invalid("mapping", "mapping: not a valid mapping name")
	}
	if req.DurationSeconds < 0 {
		return invalid("duration_seconds", "duration_seconds: must be positive")
	}
	return nil
}

// requestDuration is the credential lifetime: the request's, or the
// default, within the provider's minimum and the mapping's maximum.
func requestDuration(req *api.ExchangeRequest, m *mapping.Mapping) (time.Duration, error) {
	lo, _, _ := mapping.DurationBounds(m.Provider)
	d := req.DurationSeconds
	if d == 0 {
		d = max(min(defaultDuration, m.MaxDurationSeconds), lo)
	}
	if d < lo || d > m.MaxDurationSeconds {
		return 0, invalid("duration_seconds", fmt.Sprintf("duration_seconds: must be from %d to %d for mapping %q", lo, m.MaxDurationSeconds, m.Name))
	}
	return time.Duration(d) * time.Second, nil
}

func providerNote(p string) string {
	if p == "" {
		return ""
	}
	return " for provider " + strconv.Quote(p)
}

func noMatch(msg string) error {
	return &requestError{status: http.StatusForbidden, body: api.Error{Error: api.CodeNoMatchingMapping, Message: msg}}
}

func tokenError(code, msg string) error {
	return &requestError{status: http.StatusUnauthorized, body: api.Error{Error: code, Message: msg}}
}

func rateLimited(wait time.Duration) error {
	return &requestError{status: http.StatusTooManyRequests, retryAfter: wait,
		body: api.Error{Error: api.CodeRateLimited, Message: "too many requests from this client; retry later"}}
}

// issuanceError carries the issuance id of a recorded attempt to the error
// handler, which puts it in the body.
type issuanceError struct {
	err error
	id  string
}

func (e *issuanceError) Error() string { return e.err.Error() }
func (e *issuanceError) Unwrap() error { return e.err }

func withIssuance(err error, id string) error {
	if id == "" {
		return err
	}
	return &issuanceError{err: err, id: id}
}

// decodeOptional is decodeStrict for a body that may be absent.
func decodeOptional(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	return decodeStrict(c, v)
}

func clientAddr(c echo.Context) netip.Addr {
	a, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (x *exchangeRun) outcome(err error) string {
	switch {
	case err == nil:
		return "issued"
	case x.claims == nil:
		return "rejected" // the token did not verify: nothing recorded
	}
	var pe *providers.Error
	if errors.As(err, &pe) || errors.Is(err, ledger.ErrUnavailable) || unavailable(err) {
		return "failed"
	}
	return "denied"
}

func (x *exchangeRun) code(err error) string {
	if err == nil {
		return "ok"
	}
	return classify(err).body.Error
}

// maxLoggedDecisions bounds the mappings' decisions on the log line.
const maxLoggedDecisions = 20

// maxLogValue bounds a token-supplied value in a log line (catalogue 56):
// claims pass verification's shape checks but may still be long.
const maxLogValue = 256

// capLogValue cuts v to maxLogValue bytes at a character boundary and says
// whether it did.
func capLogValue(v string) (string, bool) {
	if len(v) <= maxLogValue {
		return v, false
	}
	i := maxLogValue
	for i > 0 && !utf8.RuneStart(v[i]) {
		i--
	}
	return v[:i], true
}

// log writes one line per exchange: identifiers only, never a token or a
// secret. It has each stage's latency and each considered mapping's
// decision (admitted, or the reason it did not admit).
func (x *exchangeRun) log(err error) {
	attrs := []any{
		"request_id", x.c.Response().Header().Get(echo.HeaderXRequestID),
		"outcome", x.outcome(err), "code", x.code(err),
		"duration_ms", float64(time.Since(x.start).Microseconds()) / 1000,
		"client_ip", x.c.RealIP(),
	}
	if x.reason != "" {
		attrs = append(attrs, "reason", x.reason)
	}
	if x.claims != nil {
		truncated := false
		field := func(v string) string {
			c, cut := capLogValue(v)
			truncated = truncated || cut
			return c
		}
		attrs = append(attrs, "issuer", x.claims.IssuerName, "repository", field(x.claims.Repository),
			"ref", field(x.claims.Ref), "run_id", field(x.claims.RunID), "jti", field(x.claims.JTI))
		if truncated {
			attrs = append(attrs, "truncated", true)
		}
	}
	for _, kv := range [][2]string{{"issuance_id", x.issuance}, {"mapping", x.mapping}, {"provider", x.provider}, {"credential_id", x.credID}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if len(x.stages) > 0 {
		st := make([]any, len(x.stages))
		for i, s := range x.stages {
			st[i] = slog.Float64(s.name, float64(s.took.Microseconds())/1000)
		}
		attrs = append(attrs, slog.Group("stage_ms", st...))
	}
	if len(x.decisions) > 0 {
		ds := make([]any, 0, min(len(x.decisions), maxLoggedDecisions))
		for _, d := range x.decisions[:min(len(x.decisions), maxLoggedDecisions)] {
			v := d.reason
			if v == "" {
				v = "admitted"
			}
			if d.audit {
				v = "audit:" + v
			}
			ds = append(ds, slog.String(d.mapping, v))
		}
		attrs = append(attrs, slog.Group("decisions", ds...))
		if n := len(x.decisions) - maxLoggedDecisions; n > 0 {
			attrs = append(attrs, "decisions_omitted", n)
		}
	}
	level := slog.LevelInfo
	if x.claims == nil && err != nil {
		// Unverified traffic: a counter, and the line at debug only.
		level = slog.LevelDebug
	}
	// The request's context: its trace id joins the line.
	x.s.log.Log(x.c.Request().Context(), level, "exchange", attrs...)
}
