package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// Limits of AssumeRole's DurationSeconds: 900-43200 s, and at most one
// hour "if you assume a role using role chaining"
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
const (
	minDuration        = 900 * time.Second
	maxDuration        = 43200 * time.Second
	maxChainedDuration = 3600 * time.Second
)

// Config configures the provider. The bridge's AWS credentials, region and
// endpoints are not here: the SDK reads them from its standard environment.
type Config struct {
	// Logger receives failures (with AWS's message and request id) and, at
	// debug level, successes. Never secrets. Nil discards.
	Logger *slog.Logger
	// HTTPClient, if set, makes the STS calls, used as it is (AWS_CA_BUNDLE
	// does not apply to it); the SDK's credential lookups keep the SDK's
	// own client. Nil means the SDK's default client for both.
	HTTPClient *http.Client
	// Signer signs the web identity tokens of targets in mode web_identity
	// (see the package documentation for their claims). Nil: such mints
	// fail with ErrUnavailable, code SignerUnavailable; mode assume_role
	// does not need it.
	Signer signing.Signer
	// RoleChaining says that the bridge's own AWS credentials are a role
	// session (IRSA, EKS Pod Identity, an ECS task role, an EC2 instance
	// profile: BRIDGE_AWS_ROLE_CHAINING, true unless the bridge runs with
	// an IAM user's keys), so that its AssumeRole is role chaining, which
	// AWS refuses for more than an hour: such sessions are cut to 3600 s.
	// The admin API refuses longer assume_role mappings then; this catches
	// those stored before. web_identity mints are not chaining.
	RoleChaining bool
}

// Provider mints AWS credentials with sts:AssumeRole or, for targets in
// mode web_identity, sts:AssumeRoleWithWebIdentity. It is safe for
// concurrent use.
type Provider struct {
	client *sts.Client
	creds  awssdk.CredentialsProvider
	signer signing.Signer
	log    *slog.Logger
	// roleChaining is Config.RoleChaining.
	roleChaining bool
	// revoke is RevokeSessions' IAM client, made on its first call.
	revoke iamState
}

var _ providers.Provider = (*Provider)(nil)

// New loads the bridge's own AWS configuration with the SDK's default chain.
// It does not contact AWS: missing credentials show on the first Mint.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// The HTTP client is not given to LoadDefaultConfig: with AWS_CA_BUNDLE
	// set, it refuses any client but its own BuildableClient.
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws: load sdk configuration: %w", err)
	}
	if awsCfg.Credentials == nil {
		return nil, errors.New("aws: the sdk found no credentials provider")
	}
	client := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
		if cfg.HTTPClient != nil {
			o.HTTPClient = cfg.HTTPClient
		}
		// One STS call per mint, hence per issuance record: the SDK's
		// retries would send the same request again after a lost answer
		// and could leave a session the ledger never saw. The client
		// retries, with a fresh pipeline token and a new record.
		o.Retryer = awssdk.NopRetryer{}
		o.RetryMaxAttempts = 0 // else AWS_MAX_ATTEMPTS would wrap the retryer
		// Wire logging would print response bodies, which hold secrets.
		o.ClientLogMode = 0
		o.Logger = logging.Nop{}
	})
	return &Provider{client: client, creds: awsCfg.Credentials, signer: cfg.Signer, log: log, roleChaining: cfg.RoleChaining}, nil
}

// Name is "aws".
func (p *Provider) Name() string { return Name }

// Mint assumes the target's role for req.Duration, with sts:AssumeRole or,
// in mode web_identity, sts:AssumeRoleWithWebIdentity.
func (p *Provider) Mint(ctx context.Context, req providers.Request) (providers.Credential, error) {
	log := p.log.With("mapping", req.Mapping, "issuance_id", req.IssuanceID)
	t, err := decodeTarget(req.Target)
	if err != nil {
		log.Error("aws: refusing a mapping target", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}
	if req.Claims == nil {
		log.Error("aws: mint request without claims")
		return providers.Credential{}, refused("InvalidRequest")
	}
	if err := (Spec{}).CheckDownscope(req.Target, req.Downscope); err != nil {
		// The bridge checked it before reserving; a mint never widens.
		log.Error("aws: refusing a downscope", "error", err)
		return providers.Credential{}, refused("InvalidRequest")
	}
	if req.Duration < minDuration || req.Duration > maxDuration {
		log.Error("aws: duration outside STS's range", "duration", req.Duration)
		return providers.Credential{}, refused("InvalidDuration")
	}

	if t.Mode == modeWebIdentity {
		return p.assumeRoleWithWebIdentity(ctx, log, req, t)
	}
	return p.assumeRole(ctx, log, req, t)
}

// assumeRole mints with sts:AssumeRole, signed with the bridge's own
// credentials.
func (p *Provider) assumeRole(ctx context.Context, log *slog.Logger, req providers.Request, t target) (providers.Credential, error) {
	d := req.Duration
	if p.roleChaining && d > maxChainedDuration {
		// A mapping stored before the admin API knew the rule: a shorter
		// credential rather than a refusal by STS.
		log.Warn("aws: session cut to an hour: the bridge's AssumeRole is role chaining (BRIDGE_AWS_ROLE_CHAINING); "+
			"lower the mapping's max_duration_seconds to 3600 or use mode web_identity", "duration", d)
		d = maxChainedDuration
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         &t.RoleARN,
		RoleSessionName: awssdk.String(sessionName(req.Claims)),
		DurationSeconds: awssdk.Int32(int32(d / time.Second)),
		Tags:            sessionTags(req, t),
	}
	in.TransitiveTagKeys = transitiveKeys(in.Tags, t)
	if si := sourceIdentity(req.Claims); si != "" {
		in.SourceIdentity = &si
	}
	if policy := sessionPolicy(t, req); policy != "" {
		in.Policy = &policy
	}
	if t.ExternalID != "" {
		in.ExternalId = &t.ExternalID
	}
	log = log.With("role_arn", t.RoleARN, "region", t.Region, "session_name", *in.RoleSessionName)

	// The bridge's own credentials are fetched first so that their absence
	// is told apart from a refusal by STS.
	if _, err := p.creds.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return providers.Credential{}, p.failed(log, ctx, "AssumeRole", err)
		}
		log.Error("aws: the bridge's own credentials are unavailable", "error", err)
		return providers.Credential{}, unavailable("CredentialsUnavailable")
	}

	out, err := p.client.AssumeRole(ctx, in, func(o *sts.Options) { o.Region = t.Region })
	if err != nil {
		return providers.Credential{}, p.failed(log, ctx, "AssumeRole", err)
	}
	return issued(log, "AssumeRole", out.Credentials, t, "aws: assumed role",
		"source_identity", awssdk.ToString(in.SourceIdentity),
		"session_token_utilization", awssdk.ToInt32(out.SessionTokenUtilization))
}

// issued is the credential of STS's answer c to action, logged at debug
// level as done with attrs; an answer without complete credentials may
// hide a session that never reached the bridge, so it is indeterminate.
func issued(log *slog.Logger, action string, c *types.Credentials, t target, done string, attrs ...any) (providers.Credential, error) {
	cred, ok := credential(c, t)
	if !ok {
		log.Error("aws: " + action + " answered without complete credentials")
		return providers.Credential{}, indeterminate("InvalidResponse")
	}
	log.Debug(done, append([]any{"access_key_id", cred.ID, "expires_at", cred.ExpiresAt}, attrs...)...)
	return cred, nil
}

// credential is the provider's credential for STS's c, issued for target t,
// and false when c lacks a part.
func credential(c *types.Credentials, t target) (providers.Credential, bool) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil ||
		*c.AccessKeyId == "" || *c.SecretAccessKey == "" || *c.SessionToken == "" {
		return providers.Credential{}, false
	}
	return providers.Credential{
		ID:        *c.AccessKeyId,
		ExpiresAt: *c.Expiration,
		Body: providers.AWSCredentials{
			AccessKeyID:     *c.AccessKeyId,
			SecretAccessKey: *c.SecretAccessKey,
			SessionToken:    *c.SessionToken,
			Expiration:      *c.Expiration,
			Region:          t.Region,
			AccountID:       roleAccount(t.RoleARN),
		},
	}, true
}

func refused(code string) *providers.Error {
	return &providers.Error{Provider: "aws", Code: code, Err: providers.ErrRefused}
}

func unavailable(code string) *providers.Error {
	return &providers.Error{Provider: "aws", Code: code, Err: providers.ErrUnavailable}
}

// indeterminate is a failure after which STS may have issued credentials.
func indeterminate(code string) *providers.Error {
	e := unavailable(code)
	e.Indeterminate = true
	return e
}

// failed logs err of the STS action in full and returns what a client may
// see of it.
func (p *Provider) failed(log *slog.Logger, ctx context.Context, action string, err error) *providers.Error {
	e := classify(ctx, err)
	attrs := []any{"code", e.Code, "error", err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		attrs = append(attrs, "status", re.HTTPStatusCode(), "request_id", re.ServiceRequestID())
	}
	if errors.Is(e, providers.ErrRefused) {
		log.Warn("aws: STS refused "+action, attrs...)
	} else {
		log.Error("aws: STS failed", attrs...)
	}
	return e
}

// transient are the error codes of a failing, rather than refusing, STS.
var transient = func() map[string]bool {
	m := map[string]bool{
		"InternalFailure":       true,
		"InternalError":         true,
		"ServiceUnavailable":    true,
		"IDPCommunicationError": true,
	}
	for c := range retry.DefaultThrottleErrorCodes {
		m[c] = true
	}
	for c := range retry.DefaultRetryableErrorCodes {
		m[c] = true
	}
	return m
}()

// classify turns an SDK error into the provider's error: AWS's code when STS
// answered, else Timeout, Canceled, ConnectionError, InvalidResponse or
// UnknownError. Only well-formed codes pass, so nothing of an ARN, account
// or message can reach a client through Code.
func classify(ctx context.Context, err error) *providers.Error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if !codePattern(code) {
			code = "UnknownError"
		}
		status := 0
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		if transient[code] || status >= 500 || status == http.StatusTooManyRequests || ae.ErrorFault() == smithy.FaultServer {
			return unavailable(code)
		}
		return refused(code)
	}
	// Without an answer from STS, it may have issued credentials that were
	// lost on the way: these failures are indeterminate.
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return indeterminate("Timeout")
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return indeterminate("Canceled")
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return indeterminate("InvalidResponse")
	}
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		return indeterminate("ConnectionError")
	}
	return indeterminate("UnknownError")
}

// codePattern accepts AWS error codes: letters only, 2 to 64 of them, so
// that no account id, ARN or message can pass as a code.
func codePattern(code string) bool {
	if len(code) < 2 || len(code) > 64 {
		return false
	}
	for _, r := range code {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}
