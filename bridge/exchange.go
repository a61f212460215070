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
	raw, _ := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
	res, err := s.runExchange(c, raw, endpoint{params: func() (api.ExchangeRequest, error) {
		var req api.ExchangeRequest
		if err := decodeOptional(c, &req); err != nil {
			return req, err
		}
		return req, checkExchangeRequest(&req)
	}})
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

// endpoint is what differs between the exchange's two endpoints.
type endpoint struct {
	// params reads the request's parameters. The select stage calls it
	// first, once the token has verified, so that a bad request with a
	// good token is recorded.
	params func() (api.ExchangeRequest, error)
	// accept, when set, refuses a selected mapping this endpoint cannot
	// serve as asked, before anything is reserved or minted; the refusal
	// is recorded.
	accept func(*mapping.Mapping) error
}

// exchanged is a recorded issuance.
type exchanged struct {
	issuance string
	mapping  *mapping.Mapping
	cred     providers.Credential
}

// runExchange runs one exchange of the raw pipeline token: its stages
// (run), the record of its outcome (record), then, once, the error's
// classification, the metric, the span's attributes and the log line
// (report). A failed exchange's error is the classified *problem.
func (s *Server) runExchange(c echo.Context, raw string, ep endpoint) (*exchanged, error) {
	x := &exchangeRun{s: s, c: c, start: time.Now()}
	ctx, cancel := context.WithTimeout(c.Request().Context(), exchangeTimeout)
	defer cancel()
	st, err := x.run(ctx, raw, ep)
	res, err := x.record(ctx, st, err)
	return res, x.report(ctx, err)
}

// exchangeRun is what one exchange reports: the identifiers run and
// record learn from the stages' results, and the stages' times.
type exchangeRun struct {
	s        *Server
	c        echo.Context
	start    time.Time
	claims   *identity.Claims
	mapping  string
	provider string
	issuance string
	credID   string
	// stages are the stages run so far, and decisions what each mapping
	// decided, for the log line.
	stages    []stageTime
	decisions []decision
}

// stageTime is a finished stage: its time, and its span, ended by report
// (at end) with the exchange's code when the stage failed.
type stageTime struct {
	name   string
	took   time.Duration
	span   trace.Span
	end    time.Time
	failed bool
}

// decision is a mapping's answer to the token: reason "" admits, else
// the mapping package's reason; audit marks an audit-mode mapping.
type decision struct {
	mapping, reason string
	audit           bool
}

// state is what the stages have established when run returns, for record:
// the ledger row of the attempt, and how far the exchange went.
type state struct {
	attempt ledger.Attempt
	// verified: the token verified, so a refusal is recorded.
	verified bool
	mapping  *mapping.Mapping
	// reserved is the pending issuance; cred the minted credential.
	reserved *ledger.Reservation
	cred     *providers.Credential
}

// run is the exchange's stages, top to bottom, each returning what the
// next needs: verify, select, reserve, mint. The first error stops it;
// what was established goes to record.
func (x *exchangeRun) run(ctx context.Context, raw string, ep endpoint) (st state, err error) {
	s, c := x.s, x.c
	if ok, wait := s.limiter.allow(clientKey(c.RealIP())); !ok {
		return st, rateLimited(wait, "too many requests from this client; retry later")
	}
	if raw == "" {
		return st, because("missing_token", missingToken("send the pipeline's OIDC token as `Authorization: Bearer <token>`"))
	}
	claims, err := x.verify(ctx, raw)
	if err != nil {
		return st, err
	}
	x.claims, st.verified = claims, true
	st.attempt = ledger.Attempt{Claims: claims, ClientIP: clientAddr(c), UserAgent: c.Request().UserAgent()}
	if err := s.issuerAllow(claims); err != nil {
		return st, err
	}

	sel, err := x.choose(ctx, claims, st.attempt, ep)
	// The name the request gave, recorded as given (the ledger cleans and
	// bounds it) even when the request is refused, a bad name included.
	st.attempt.RequestedMapping = sel.req.Mapping
	if sel.parsed {
		st.attempt.Downscope = requested(&sel.req)
	}
	x.decisions = sel.decisions
	if sel.parsed {
		x.provider = sel.req.Provider
	}
	if m := sel.mapping; m != nil {
		// Also a named mapping that refused: its row names it.
		st.attempt.MappingID, st.attempt.Mapping, st.attempt.Provider, st.attempt.Target = m.ID, m.Name, m.Provider, m.Target
	}
	if sel.chosen {
		x.mapping, x.provider = sel.mapping.Name, sel.mapping.Provider
	}
	if err != nil {
		return st, err
	}
	m := sel.mapping
	st.mapping = m
	st.attempt.Duration = sel.duration
	if m.Quota != nil {
		st.attempt.PerHour, st.attempt.PerJob = m.Quota.PerHour, m.Quota.PerJob
	}

	res, err := x.reserve(ctx, st.attempt)
	if err != nil {
		return st, err
	}
	st.reserved = &res

	cred, err := x.mint(ctx, m, res, claims, st.attempt.Duration, sel.downscope)
	if err != nil {
		return st, err
	}
	st.cred = &cred
	x.credID = cred.ID
	return st, nil
}

// verify is the verify stage: the token's claims.
func (x *exchangeRun) verify(ctx context.Context, raw string) (*identity.Claims, error) {
	ctx, end := x.stage(ctx, stageVerify)
	claims, err := x.s.opts.Verifier.Verify(ctx, raw)
	end(err)
	if err != nil {
		x.s.metrics.verifyFailures.WithLabelValues(identity.Reason(err)).Inc()
		return nil, err
	}
	return claims, nil
}

// selection is the select stage's answer. On a refusal it holds what was
// learnt, for the record: the request as read, the named mapping that
// refused, the mappings' decisions.
type selection struct {
	req api.ExchangeRequest
	// parsed: the request's parameters were valid.
	parsed bool
	// mapping is the mapping that issues (chosen), or the named one that
	// refused the token.
	mapping   *mapping.Mapping
	chosen    bool
	duration  time.Duration
	decisions []decision
	// downscope is what the request asked for below the mapping, checked.
	downscope providers.Downscope
}

// choose is the select stage: it reads the request, selects the mapping
// that admits the token, records the audit-mode mappings' decisions and
// settles the credential's lifetime. Its refusals are recorded; a failing
// store is not (there is nothing to record it in).
func (x *exchangeRun) choose(ctx context.Context, claims *identity.Claims, base ledger.Attempt, ep endpoint) (sel selection, err error) {
	ctx, end := x.stage(ctx, stageSelect)
	defer func() { end(err) }()
	sel.req, err = ep.params()
	if err != nil {
		return sel, refusing(err)
	}
	sel.parsed = true
	all, err := x.s.opts.Store.ListMappings(ctx, mapping.Filter{Issuer: claims.IssuerName, Provider: sel.req.Provider, EnabledOnly: true})
	if err != nil {
		return sel, err
	}
	issuing, audits := splitAudits(all)
	sel.mapping, sel.decisions, err = selectMapping(issuing, audits, claims, &sel.req)
	base.RequestedMapping = sel.req.Mapping
	sel.decisions = append(sel.decisions, x.recordAudits(ctx, base, claims, audits)...)
	if err != nil {
		return sel, err
	}
	sel.chosen = true
	if ep.accept != nil {
		if err := ep.accept(sel.mapping); err != nil {
			return sel, refusing(err)
		}
	}
	if sel.duration, err = requestDuration(&sel.req, sel.mapping); err != nil {
		return sel, refusing(err)
	}
	target, d, err := resolve(sel.mapping, claims, &sel.req)
	if err != nil {
		return sel, err
	}
	// The mapping as it issues for this token: its target resolved, which
	// the ledger records and the provider mints.
	m := *sel.mapping
	m.Target = target
	sel.mapping, sel.downscope = &m, d
	return sel, nil
}

// resolve returns m's target resolved for claims (providers.ResolveTarget)
// and the request's downscope, checked against it by the provider. A
// template the token cannot fill is no_matching_mapping (reason
// target_template); a downscope that asks for more is invalid_request on
// its field.
func resolve(m *mapping.Mapping, claims *identity.Claims, req *api.ExchangeRequest) (json.RawMessage, providers.Downscope, error) {
	d := providers.Downscope{InlinePolicy: req.InlinePolicy, Scopes: req.Scopes}
	spec, ok := mapping.Providers().Lookup(m.Provider)
	if !ok {
		return m.Target, d, nil // the mint reports the unknown provider
	}
	target, err := providers.ResolveTarget(spec, m.Target, claims)
	if err != nil {
		return nil, d, because("target_template", noMatch(fmt.Sprintf("mapping %q cannot serve this token: %v", m.Name, templateReason(err))))
	}
	if err := providers.CheckDownscope(spec, target, d); err != nil {
		var fe *providers.FieldError
		if errors.As(err, &fe) {
			return nil, d, refusing(invalid(fe.Field, fe.Field+": "+fe.Message))
		}
		return nil, d, refusing(invalid("", "the request cannot narrow this mapping's credential"))
	}
	return target, d, nil
}

// templateReason says why a template could not be resolved, without the
// claim's value.
func templateReason(err error) string {
	var te *providers.TemplateError
	if errors.As(err, &te) {
		if te.Variable == "" {
			return te.Field + ": " + te.Reason
		}
		return te.Field + ": ${" + te.Variable + "}: " + te.Reason
	}
	return "its target template cannot be resolved"
}

// requested is what the request asked for below the mapping, for the
// ledger's downscope column: nil when it asked for nothing.
func requested(req *api.ExchangeRequest) json.RawMessage {
	if req.DurationSeconds == 0 && req.InlinePolicy == "" && len(req.Scopes) == 0 {
		return nil
	}
	b, err := json.Marshal(struct {
		DurationSeconds int      `json:"duration_seconds,omitempty"`
		InlinePolicy    string   `json:"session_policy,omitempty"` // targetlint:allow what the client asked, recorded
		Scopes          []string `json:"scopes,omitempty"`
	}{req.DurationSeconds, req.InlinePolicy, req.Scopes})
	if err != nil {
		return nil
	}
	return b
}

// splitAudits parts the issuer's mappings into those that may issue and
// the audit-mode ones, which are evaluated and recorded, never issuing.
func splitAudits(all []mapping.Mapping) (issuing, audits []mapping.Mapping) {
	for _, m := range all {
		if m.Mode == mapping.ModeAudit {
			audits = append(audits, m)
		} else {
			issuing = append(issuing, m)
		}
	}
	return issuing, audits
}

// recordAudits records what each audit-mode mapping of the issuer would
// have decided for this token and returns those decisions. They never
// issue and never change the exchange's own answer; a failure to record
// them is logged, not fatal.
func (x *exchangeRun) recordAudits(ctx context.Context, base ledger.Attempt, claims *identity.Claims, audits []mapping.Mapping) []decision {
	if len(audits) == 0 {
		return nil
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	ds := make([]decision, 0, len(audits))
	for i := range audits {
		m := &audits[i]
		ok, reason := m.Admits(claims)
		ds = append(ds, decision{mapping: m.Name, reason: reason, audit: true})
		a := base
		a.MappingID, a.Mapping, a.Provider, a.Target = m.ID, m.Name, m.Provider, m.Target
		if _, err := x.s.opts.Ledger.RecordAudit(rctx, a, ok, reason); err != nil {
			x.auditWriteFailed(opRecordAudit)
			x.s.log.ErrorContext(ctx, "exchange: record an audit-mode decision", "mapping", m.Name, "err", err)
		}
	}
	return ds
}

// selectMapping finds the mapping that admits the token: the named one, or
// the single one among the issuer's enabled mappings (of the provider, if
// given), and says what each mapping considered decided. When the request
// named a mapping of the issuer that refuses the token (its conditions,
// audit mode), that mapping is returned with the refusal, for the record.
func selectMapping(ms, audits []mapping.Mapping, claims *identity.Claims, req *api.ExchangeRequest) (*mapping.Mapping, []decision, error) {
	if req.Mapping != "" {
		for i := range audits {
			if a := &audits[i]; a.Name == req.Mapping {
				return a, []decision{{mapping: a.Name, reason: "audit_mode"}}, because("audit_mode",
					noMatch(fmt.Sprintf("mapping %q is in audit mode: it records what it would decide but issues nothing", a.Name)))
			}
		}
		for i := range ms {
			if ms[i].Name != req.Mapping {
				continue
			}
			ok, reason := ms[i].Admits(claims)
			ds := []decision{{mapping: ms[i].Name, reason: reason}}
			if !ok {
				return &ms[i], ds, because(reason, noMatch(fmt.Sprintf("mapping %q does not admit this token (%s)", req.Mapping, reason)))
			}
			return &ms[i], ds, nil
		}
		return nil, nil, because("unknown_mapping",
			noMatch(fmt.Sprintf("no enabled mapping %q of this token's issuer%s", req.Mapping, providerNote(req.Provider))))
	}
	admitted, reasons := mapping.Evaluate(ms, claims)
	ds := make([]decision, len(ms))
	for i := range ms {
		ds[i] = decision{mapping: ms[i].Name, reason: reasons[i]}
	}
	switch len(admitted) {
	case 0:
		return nil, ds, because("no_mapping_admits",
			noMatch(fmt.Sprintf("no enabled mapping of issuer %q%s admits this token", claims.IssuerName, providerNote(req.Provider))))
	case 1:
		return &admitted[0], ds, nil
	}
	names := make([]string, len(admitted))
	for i, m := range admitted {
		names[i] = m.Name
	}
	return nil, ds, because("ambiguous", ambiguous(fmt.Sprintf(
		"several mappings admit this token: %s; name one in the request's \"mapping\" field", strings.Join(names, ", "))))
}

// reserve is the reserve stage: the pending issuance, or the ledger's
// refusal (replay, quota: recorded by the ledger itself, with its id).
func (x *exchangeRun) reserve(ctx context.Context, a ledger.Attempt) (ledger.Reservation, error) {
	ctx, end := x.stage(ctx, stageReserve)
	res, err := x.s.opts.Ledger.Reserve(ctx, a)
	end(err)
	if err != nil {
		if id, ok := ledger.IssuanceID(err); ok {
			x.issuance = id
			return res, err
		}
		x.auditWriteFailed(opReserve)
		return res, err
	}
	x.issuance = res.ID
	return res, nil
}

// mint is the mint stage: one cloud call, under its own deadline and the
// provider's circuit breaker.
func (x *exchangeRun) mint(ctx context.Context, m *mapping.Mapping, res ledger.Reservation, claims *identity.Claims, dur time.Duration, d providers.Downscope) (providers.Credential, error) {
	ctx, end := x.stage(ctx, stageMint)
	cred, err := x.callProvider(ctx, m, res, claims, dur, d)
	end(err)
	return cred, err
}

func (x *exchangeRun) callProvider(ctx context.Context, m *mapping.Mapping, res ledger.Reservation, claims *identity.Claims, dur time.Duration, d providers.Downscope) (providers.Credential, error) {
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
		return p.Mint(mctx, providers.Request{IssuanceID: res.ID, Mapping: m.Name, Target: m.Target, Claims: claims, Duration: dur, Downscope: d})
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

// record is the record stage: the ledger's record of the exchange's
// outcome, written even if the client has gone (under one detached
// deadline). A minted credential's row becomes issued; a failed mint's
// failed or unknown; a verified token's refusal becomes a denial. It
// returns the exchange's result, or its error (a record that could not be
// written makes the answer 503, and withholds a minted credential).
func (x *exchangeRun) record(ctx context.Context, st state, err error) (*exchanged, error) {
	minted, mintFailed := err == nil, err != nil && st.reserved != nil
	denied := err != nil && !mintFailed && st.verified && refused(err)
	if !minted && !mintFailed && !denied {
		return nil, err // nothing to record: the token did not verify, or the ledger failed
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	switch {
	case mintFailed:
		x.recordMintFailure(ctx, rctx, *st.reserved, err)
		return nil, err
	case denied:
		return nil, x.deny(ctx, rctx, st.attempt, err)
	}
	if err := x.complete(ctx, rctx, st); err != nil {
		return nil, err
	}
	return &exchanged{issuance: st.reserved.ID, mapping: st.mapping, cred: *st.cred}, nil
}

// detached is the context of a ledger write that must happen even when the
// client has gone: ctx's values, not its cancellation, and recordTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

// complete records the minted credential: the pending row becomes issued.
func (x *exchangeRun) complete(ctx, rctx context.Context, st state) error {
	res, cred := *st.reserved, *st.cred
	rctx, end := x.stage(rctx, stageRecord)
	err := x.s.opts.Ledger.Complete(rctx, res, cred.ID, cred.ExpiresAt)
	end(err)
	var revoked *ledger.RevokedError
	if errors.As(err, &revoked) {
		// An admin revoked the issuance while it was minted: the
		// credential is recorded (issued, revoked, revoked_in_flight) but
		// must not reach the client. Its id goes to the log so that
		// operators can follow it at the cloud.
		x.s.log.WarnContext(ctx, "exchange: issuance revoked while its credential was minted; withheld from the client",
			"issuance_id", res.ID, "credential_id", cred.ID, "mapping", st.mapping.Name,
			"revoked_by", revoked.RevokedBy, "revoked_at", revoked.RevokedAt.UTC())
		return because("revoked_in_flight", err)
	}
	if err != nil {
		// The credential exists at the cloud but its issuance is not
		// durably recorded: it must not reach the client. Its id goes to
		// the log and a metric so that operators can revoke it; the
		// pending row becomes `unknown` when the sweeper runs.
		x.auditWriteFailed(opComplete)
		x.s.metrics.unrecorded.Inc()
		x.s.log.ErrorContext(ctx, "exchange: issued credential not recorded; withheld from the client",
			"issuance_id", res.ID, "credential_id", cred.ID, "mapping", st.mapping.Name, "err", err)
		return fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
	}
	return nil
}

// recordMintFailure records a failed mint. Failed releases the token for a
// retry, so it is recorded only when the cloud certainly issued nothing.
// After an indeterminate failure (the request may have reached the cloud,
// no answer came back) the row becomes unknown at once and the token stays
// spent: one cloud call per issuance record, and never a second credential
// for the same token. If a write fails, the row stays pending and the
// sweeper marks it unknown once a credential would have expired.
func (x *exchangeRun) recordMintFailure(ctx, rctx context.Context, res ledger.Reservation, err error) {
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

// deny records a refusal of a verified token under the code the client is
// answered with, and returns the refusal classified (report answers with
// that classification); if the record cannot be written, the answer is 503.
func (x *exchangeRun) deny(ctx, rctx context.Context, a ledger.Attempt, cause error) error {
	p := classify(cause)
	p.cause = cause
	rctx, end := x.stage(rctx, stageRecord)
	id, err := x.s.opts.Ledger.Deny(rctx, a, p.body.Error)
	end(err)
	if err != nil {
		x.auditWriteFailed(opDeny)
		x.s.log.ErrorContext(ctx, "exchange: record denial", "code", p.body.Error, "err", err)
		// The refusal's reason stays the log's.
		return because(reasonOf(cause), fmt.Errorf("%w: record denial: %w", ledger.ErrUnavailable, err))
	}
	x.issuance = id
	return &p
}

// stage starts one stage of the exchange: a span, child of the request's,
// and a timer. The returned func ends it with the stage's error (nil when
// it did its work, though the exchange may still be refused); a failed
// stage's span is ended by report, with the exchange's error code.
func (x *exchangeRun) stage(ctx context.Context, name string) (context.Context, func(error)) {
	ctx, span := x.s.tracer.Start(ctx, name)
	start := time.Now()
	return ctx, func(err error) {
		now := time.Now()
		took := now.Sub(start)
		x.s.metrics.stageDuration.WithLabelValues(name).Observe(took.Seconds())
		x.stages = append(x.stages, stageTime{name: name, took: took, span: span, end: now, failed: err != nil})
		if err == nil {
			span.End(trace.WithTimestamp(now))
		}
	}
}

// auditWriteFailed counts a failed ledger write of the exchange.
func (x *exchangeRun) auditWriteFailed(op string) {
	x.s.metrics.auditFailures.WithLabelValues(op).Inc()
}

// report is the exchange's one account of itself: the error classified
// once (a denial's by deny, which records its code) into the contract's
// answer with the recorded issuance's id; the failed stages' spans ended
// with its code; the metric, the request span's attributes and the log
// line. It returns the classified error.
func (x *exchangeRun) report(ctx context.Context, err error) error {
	outcome, code, field, reason := "issued", "ok", "", ""
	var p problem
	if err != nil {
		p = classify(err) // at once when deny has classified it
		if p.cause == nil {
			p.cause = err
		}
		p.body.IssuanceID = x.issuance
		code, field, reason = p.body.Error, p.body.Field, reasonOf(err)
		outcome = x.outcome(code)
	}
	for _, st := range x.stages {
		if st.failed {
			st.span.SetStatus(codes.Error, code)
			st.span.End(trace.WithTimestamp(st.end))
		}
	}
	x.s.metrics.observeExchange(exchangeResult{provider: x.provider, mapping: x.mapping, outcome: outcome,
		code: code, field: field, elapsed: time.Since(x.start)})
	x.annotate(ctx, outcome, code)
	x.log(outcome, code, reason, err != nil)
	if err != nil {
		return &p
	}
	return nil
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

// outcome is a failed exchange's outcome label: rejected when the token did
// not verify (nothing recorded), failed when a dependency failed (the cloud,
// the database), else denied.
func (x *exchangeRun) outcome(code string) string {
	switch {
	case x.claims == nil:
		return "rejected"
	case code == api.CodeProviderError || code == api.CodeUnavailable:
		return "failed"
	}
	return "denied"
}

// refusal marks a refusal of the request by run (not a failure of a
// dependency): when the token verified, record writes it as a denial.
// reason, when set, says why on the log line (record's own errors carry
// one too: revoked_in_flight).
type refusal struct {
	reason string
	err    error
}

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

func because(reason string, err error) error { return &refusal{reason: reason, err: err} }

// refusing marks err a refusal, keeping a reason it already has.
func refusing(err error) error {
	if refused(err) {
		return err
	}
	return because("", err)
}

func refused(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// reasonOf is the log line's reason of a failed exchange: the refusal's,
// or why the token did not verify.
func reasonOf(err error) string {
	var r *refusal
	if errors.As(err, &r) && r.reason != "" {
		return r.reason
	}
	return identity.Reason(err)
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
func (x *exchangeRun) log(outcome, code, reason string, failed bool) {
	attrs := []any{
		"request_id", x.c.Response().Header().Get(echo.HeaderXRequestID),
		"outcome", outcome, "code", code,
		"duration_ms", float64(time.Since(x.start).Microseconds()) / 1000,
		"client_ip", x.c.RealIP(),
	}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
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
	if x.claims == nil && failed {
		// Unverified traffic: a counter, and the line at debug only.
		level = slog.LevelDebug
	}
	// The request's context: its trace id joins the line.
	x.s.log.Log(x.c.Request().Context(), level, "exchange", attrs...)
}
