package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// AWS (outbound identity federation): a workload with AWS credentials asks
// STS's GetWebIdentityToken for a token of the bridge's audience, signed
// by its account's issuer, fresh at each call
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetWebIdentityToken.html).
// The call is regional (not on the global endpoint): $AWS_REGION or
// $AWS_DEFAULT_REGION names the region. Credentials are the job's
// $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (and $AWS_SESSION_TOKEN),
// else the SDK's default chain (profile, container, instance role).
// $AWS_ENDPOINT_URL_STS (else $AWS_ENDPOINT_URL) overrides the endpoint.
// --ci auto tries it last, and only where AWS runs the job
// ($AWS_EXECUTION_ENV: CodeBuild, ECS, Lambda; $CODEBUILD_BUILD_ID).
const awsSigningAlgorithm = "RS256"

var awsOutbound = ci{name: "aws", detect: func(env map[string]string) bool {
	return env["AWS_EXECUTION_ENV"] != "" || env["CODEBUILD_BUILD_ID"] != ""
}, source: func(env map[string]string, audience string) (Source, error) {
	region := env["AWS_REGION"]
	if region == "" {
		region = env["AWS_DEFAULT_REGION"]
	}
	if region == "" {
		return nil, errors.New("exchange: AWS's GetWebIdentityToken is regional: set $AWS_REGION")
	}
	endpoint := env["AWS_ENDPOINT_URL_STS"]
	if endpoint == "" {
		endpoint = env["AWS_ENDPOINT_URL"]
	}
	return &awsSource{region: region, endpoint: endpoint, audience: audience, env: env}, nil
}}

type awsSource struct {
	region, endpoint, audience string
	env                        map[string]string
}

func (s *awsSource) config(ctx context.Context, hc *http.Client) (aws.Config, error) {
	if id, secret := s.env["AWS_ACCESS_KEY_ID"], s.env["AWS_SECRET_ACCESS_KEY"]; id != "" && secret != "" {
		return aws.Config{Region: s.region, HTTPClient: hc,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, s.env["AWS_SESSION_TOKEN"]))}, nil
	}
	return config.LoadDefaultConfig(ctx, config.WithRegion(s.region), config.WithHTTPClient(hc))
}

func (s *awsSource) Token(ctx context.Context, hc *http.Client) (string, error) {
	if hc == nil {
		hc = &http.Client{}
	}
	cfg, err := s.config(ctx, hc)
	if err != nil {
		return "", fmt.Errorf("exchange: AWS configuration: %w", err)
	}
	stsc := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
		o.RetryMaxAttempts = 1 // the exchange's retries
	})
	out, err := stsc.GetWebIdentityToken(ctx, &sts.GetWebIdentityTokenInput{
		Audience: []string{s.audience}, SigningAlgorithm: aws.String(awsSigningAlgorithm)})
	if err != nil {
		err = fmt.Errorf("exchange: AWS STS GetWebIdentityToken (is outbound identity federation enabled for the account, and may the role call sts:GetWebIdentityToken?): %w", err)
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() == http.StatusTooManyRequests || re.HTTPStatusCode() >= 500 {
			return "", &client.TransientError{Err: err}
		}
		return "", err
	}
	if out.WebIdentityToken == nil || *out.WebIdentityToken == "" {
		return "", errors.New("exchange: AWS STS's GetWebIdentityToken answer has no token")
	}
	return *out.WebIdentityToken, nil
}

func (s *awsSource) Static() bool { return false }

func (s *awsSource) Scope() string {
	sum := sha256.Sum256([]byte(s.env["AWS_ACCESS_KEY_ID"] + "|" + s.region + "|" + s.audience))
	return jobScope(s.env) + "|aws:" + hex.EncodeToString(sum[:8])
}

func (s *awsSource) Describe() string { return "AWS STS GetWebIdentityToken" }
