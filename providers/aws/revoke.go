package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// RevokePolicyName is the name of the inline role policy with which IAM
// revokes a role's older sessions ("Revoke active sessions" in the IAM
// console, documented in "Revoking IAM role temporary security
// credentials"): it denies everything to sessions whose
// aws:TokenIssueTime is before the policy's date.
const RevokePolicyName = "AWSRevokeOlderSessions"

// RevokePolicy is the document of RevokePolicyName for sessions issued
// before before, as IAM's console writes it. IAM compares to the second:
// the date is before rounded up to the next whole second, so that a
// session issued in the same second as before is revoked too.
func RevokePolicy(before time.Time) string {
	at := before.UTC()
	if t := at.Truncate(time.Second); !t.Equal(at) {
		at = t.Add(time.Second)
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Deny",
			"Action":    []string{"*"},
			"Resource":  []string{"*"},
			"Condition": map[string]any{"DateLessThan": map[string]string{"aws:TokenIssueTime": at.Format(time.RFC3339)}},
		}},
	}
	b, _ := json.Marshal(doc) // a map of strings: cannot fail
	return string(b)
}

// Limits of the IAM calls of RevokeSessions: an admin request waits on
// them, so their retries are short.
const (
	iamMaxAttempts = 3
	iamMaxBackoff  = time.Second
)

// iamState is a Provider's IAM client and the account of its own
// credentials, made on the first RevokeSessions: mints never need them. It
// is a field of the Provider, so it goes with it.
type iamState struct {
	mu      sync.Mutex
	client  *iam.Client
	account string
}

// RoleARN returns the role an aws target names, "" when it names none. It
// reads role_arn alone, leniently: the admin API's revocation groups the
// sessions to revoke by role, and an old target that today's rules refuse
// must still be named (RevokeSessions then reports why it cannot act).
func RoleARN(target json.RawMessage) string {
	var t struct {
		RoleARN string `json:"role_arn"`
	}
	if json.Unmarshal(target, &t) != nil {
		return ""
	}
	return t.RoleARN
}

// RevokeSessions revokes every session of the target's role issued before
// before: it puts the inline policy RevokePolicyName (RevokePolicy(before))
// on the role with iam:PutRolePolicy, signed with the bridge's own
// credentials, which therefore need iam:PutRolePolicy on the role. Targets
// in mode web_identity are roles like any other. The policy revokes the
// sessions of every caller of the role issued before that time, not only
// the bridge's; a later call replaces it with its own time.
//
// IAM acts on roles of the caller's own account, by name: a role of
// another account is refused (code CrossAccountRole) rather than changing
// a namesake in the bridge's account. Errors are *providers.Error; their
// Code is IAM's (AccessDenied, NoSuchEntity, ...) or the provider's own
// (InvalidTarget, CrossAccountRole, CredentialsUnavailable, Timeout, ...).
// The endpoint is the SDK's, so AWS_ENDPOINT_URL_IAM or AWS_ENDPOINT_URL
// override it.
func (p *Provider) RevokeSessions(ctx context.Context, raw json.RawMessage, before time.Time) error {
	t, err := decodeTarget(raw)
	if err != nil {
		p.log.Error("aws: refusing a target to revoke", "error", err)
		return refused("InvalidTarget")
	}
	partition, account, name := roleParts(t.RoleARN)
	log := p.log.With("role_arn", t.RoleARN, "revoke_before", before.UTC())
	if before.IsZero() {
		return refused("InvalidRequest")
	}

	st, err := p.iam(ctx)
	if err != nil {
		log.Error("aws: cannot revoke sessions", "error", err)
		if ctx.Err() != nil {
			return classify(ctx, err)
		}
		return unavailable("CredentialsUnavailable")
	}
	own, perr := p.ownAccount(ctx, st)
	if perr != nil {
		return revokeFailed(log, ctx, "sts:GetCallerIdentity", perr)
	}
	if own != account {
		log.Warn("aws: cannot revoke sessions of a role of another account", "bridge_account", own)
		return refused("CrossAccountRole")
	}

	doc := RevokePolicy(before)
	_, err = st.client.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName:       &name,
		PolicyName:     awssdk.String(RevokePolicyName),
		PolicyDocument: &doc,
	}, func(o *iam.Options) { o.Region = iamRegion(partition, t.Region) })
	if err != nil {
		return revokeFailed(log, ctx, "iam:PutRolePolicy", err)
	}
	log.Info("aws: revoked older sessions of the role", "policy", RevokePolicyName)
	return nil
}

// revokeFailed logs err of action in full and returns what an admin may
// see of it.
func revokeFailed(log *slog.Logger, ctx context.Context, action string, err error) *providers.Error {
	e := classify(ctx, err)
	attrs := []any{"action", action, "code", e.Code, "error", err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		attrs = append(attrs, "status", re.HTTPStatusCode(), "request_id", re.ServiceRequestID())
	}
	log.Warn("aws: cannot revoke sessions", attrs...)
	return e
}

// iam returns p's IAM client, made on first use from the SDK's default
// configuration (as New's) with the provider's own credentials and HTTP
// client.
func (p *Provider) iam(ctx context.Context) (*iamState, error) {
	st := &p.revoke
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.client != nil {
		return st, nil
	}
	if _, err := p.creds.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("the bridge's own credentials: %w", err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load sdk configuration: %w", err)
	}
	stsOpts := p.client.Options()
	st.client = iam.NewFromConfig(cfg, func(o *iam.Options) {
		o.Credentials = p.creds
		if stsOpts.HTTPClient != nil {
			o.HTTPClient = stsOpts.HTTPClient
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = iamMaxAttempts
			so.MaxBackoff = iamMaxBackoff
		})
		o.RetryMaxAttempts = 0
		o.ClientLogMode = 0
		o.Logger = logging.Nop{}
	})
	return st, nil
}

// ownAccount returns the account of the bridge's own credentials
// (sts:GetCallerIdentity, which needs no permission), asked once.
func (p *Provider) ownAccount(ctx context.Context, st *iamState) (string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.account != "" {
		return st.account, nil
	}
	out, err := p.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	if out.Account == nil || *out.Account == "" {
		return "", errors.New("GetCallerIdentity answered without an account")
	}
	st.account = *out.Account
	return st.account, nil
}

// roleParts splits a role ARN (validated by decodeTarget) into its
// partition, account and role name (the last segment of its path).
func roleParts(arn string) (partition, account, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return "", "", ""
	}
	res := parts[5]
	return parts[1], parts[4], res[strings.LastIndexByte(res, '/')+1:]
}

// roleAccount is the account id of a role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME),
// or "" if it has none.
func roleAccount(arn string) string {
	_, account, _ := roleParts(arn)
	return account
}

// iamRegion is the region whose endpoint serves IAM in partition: IAM is
// global per partition, signed for its home region.
func iamRegion(partition, fallback string) string {
	switch partition {
	case "aws":
		return "us-east-1"
	case "aws-cn":
		return "cn-north-1"
	case "aws-us-gov":
		return "us-gov-west-1"
	}
	return fallback
}
