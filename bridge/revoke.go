package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
)

// Revoker marks issued credentials revoked in the ledger (ledger.Ledger).
// The server uses its Options.Ledger when that implements it.
type Revoker interface {
	Revoke(ctx context.Context, sel ledger.Selector, by, reason string) (ledger.RevokeResult, error)
}

// Settler waits for in-flight issuances to stop minting and bounds when
// their credentials were minted (ledger.Ledger.Settle). The server uses its
// Options.Ledger when that implements it.
type Settler interface {
	Settle(ctx context.Context, rs []ledger.Reservation, window time.Duration) (time.Time, error)
}

// SessionRevoker revokes, at the cloud, the sessions of a target issued
// before a time (aws.Provider: the role's AWSRevokeOlderSessions policy).
// The server uses its Options.Providers["aws"] when that implements it.
type SessionRevoker interface {
	RevokeSessions(ctx context.Context, target json.RawMessage, before time.Time) error
}

const (
	// maxRevokeReason bounds the reason, in bytes.
	maxRevokeReason = 1024
	// sessionRevokeTimeout bounds the cloud calls of one role.
	sessionRevokeTimeout = 15 * time.Second
	// sessionRevokeParallel is how many roles are revoked at once.
	sessionRevokeParallel = 4
)

// revokeIssuances is POST /v1/admin/issuances/revoke (scope write): it
// marks the unexpired credentials of the matching issuances revoked in the
// ledger, recording the admin token's name and the reason, and, when
// asked, attaches AWS's "revoke older sessions" policy to each of their
// AWS roles. A role the bridge may not change is reported, not fatal: the
// ledger's marks stand either way.
func (s *Server) revokeIssuances(c echo.Context) error {
	var req api.RevokeRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	req.Repository, req.RunID, req.Mapping = strings.TrimSpace(req.Repository), strings.TrimSpace(req.RunID), strings.TrimSpace(req.Mapping)
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Repository == "" && req.RunID == "" && req.Mapping == "":
		return invalid("", "name the issuances to revoke: repository, run_id or mapping (those given must all match)")
	case req.Reason == "":
		return invalid("reason", "reason: required: why the credentials are revoked (recorded in the ledger)")
	case len(req.Reason) > maxRevokeReason || !utf8.ValidString(req.Reason):
		return invalid("reason", fmt.Sprintf("reason: at most %d bytes of UTF-8", maxRevokeReason))
	}
	rv, ok := s.opts.Ledger.(Revoker)
	if !ok {
		return errors.New("revoke: the server's ledger cannot revoke")
	}
	who := actor(c)
	ctx := c.Request().Context()
	res, err := rv.Revoke(ctx, ledger.Selector{Repository: req.Repository, RunID: req.RunID, Mapping: req.Mapping}, who.Name, req.Reason)
	if err != nil {
		return err
	}
	out := api.RevokeResponse{Revoked: res.Count, AWSSessions: []api.AWSSessionRevocation{}}
	if req.RevokeAWSSessions {
		out.AWSSessions = s.revokeAWSSessions(ctx, res)
	}
	failed := 0
	for _, a := range out.AWSSessions {
		if a.Result != api.SessionsRevoked {
			failed++
		}
	}
	s.log.Info("issuances revoked", "request_id", who.RequestID, "admin", who.Name,
		"repository", req.Repository, "run_id", req.RunID, "mapping", req.Mapping, "reason", req.Reason,
		"revoked", res.Count, "aws_roles", len(out.AWSSessions), "aws_roles_failed", failed)
	return c.JSON(http.StatusOK, out)
}

// revokeAWSSessions revokes the sessions of each distinct AWS role of res
// and reports each role's result. The policy's date must follow the issue
// of every session of the marked rows:
//
//   - rows issued (or unknown) at the revocation were minted before their
//     completed_at, hence before RevokedTarget.Latest;
//   - rows pending at the revocation (RevokedTarget.InFlight) are being
//     minted: their sessions may be issued after the revocation. Complete
//     withholds those credentials from the pipeline, but they exist at
//     the cloud, so the date waits for them: Settle returns once each has
//     left pending (its completed_at follows its session's issue) or can
//     no longer mint (requested_at + exchangeTimeout: the exchange's
//     deadline starts before its reservation). That wait is a few seconds
//     at most unless a replica died while minting (then at most
//     exchangeTimeout). A date in the future (revocation + the mint
//     timeout) would also cover them, but would deny the role's next,
//     legitimate sessions, of every caller, until then.
//
// When the wait fails (the database), the date is the conservative bound:
// the newest in-flight reservation + exchangeTimeout.
func (s *Server) revokeAWSSessions(ctx context.Context, res ledger.RevokeResult) []api.AWSSessionRevocation {
	type role struct {
		arn      string
		target   json.RawMessage
		before   time.Time
		inFlight []ledger.Reservation
	}
	var roles []role
	for _, t := range res.Targets {
		if t.Provider != "aws" {
			continue
		}
		arn := aws.RoleARN(t.Target)
		if arn == "" {
			s.log.Warn("revoke: an aws issuance without a role", "mapping", t.Mapping)
			continue
		}
		before := res.RevokedAt
		if t.Latest.After(before) {
			before = t.Latest
		}
		if i := slices.IndexFunc(roles, func(r role) bool { return r.arn == arn }); i >= 0 {
			roles[i].before = maxTime(roles[i].before, before)
			roles[i].inFlight = append(roles[i].inFlight, t.InFlight...)
			continue
		}
		roles = append(roles, role{arn: arn, target: t.Target, before: before, inFlight: slices.Clone(t.InFlight)})
	}
	settler, _ := s.opts.Ledger.(Settler)
	settle := func(rs []ledger.Reservation) time.Time {
		var worst time.Time
		for _, r := range rs {
			worst = maxTime(worst, r.RequestedAt.Add(exchangeTimeout))
		}
		if len(rs) == 0 || settler == nil {
			return worst
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exchangeTimeout+recordTimeout)
		defer cancel()
		at, err := settler.Settle(sctx, rs, exchangeTimeout)
		if err != nil {
			s.log.Warn("revoke: in-flight issuances not settled; the sessions' date is their latest possible mint", "err", err)
			return worst
		}
		return at
	}
	out := make([]api.AWSSessionRevocation, len(roles))
	sr, ok := s.opts.Providers["aws"].(SessionRevoker)
	var wg sync.WaitGroup
	sem := make(chan struct{}, sessionRevokeParallel)
	for i, r := range roles {
		out[i] = api.AWSSessionRevocation{RoleARN: r.arn, Result: api.SessionsFailed, Code: "Unsupported"}
		if !ok {
			continue
		}
		wg.Go(func() {
			// Before the semaphore: waiting for one role's in-flight
			// mints does not hold up the others.
			r.before = maxTime(r.before, settle(r.inFlight))
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionRevokeTimeout)
			defer cancel()
			err := sr.RevokeSessions(cctx, r.target, r.before)
			if err == nil {
				out[i] = api.AWSSessionRevocation{RoleARN: r.arn, Result: api.SessionsRevoked}
				return
			}
			code := "UnknownError"
			var pe *providers.Error
			if errors.As(err, &pe) {
				code = pe.Code
			}
			s.log.Warn("revoke: aws sessions not revoked", "role_arn", r.arn, "code", code, "err", err)
			out[i] = api.AWSSessionRevocation{RoleARN: r.arn, Result: api.SessionsFailed, Code: code}
		})
	}
	wg.Wait()
	return out
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
