package moto_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oidc-bridge/oidc-bridge/test/moto"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// code is err's AWS error code and HTTP status ("ValidationError/400"),
// or "" for no error.
func code(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	if errors.As(err, &ae) && errors.As(err, &re) {
		return fmt.Sprintf("%s/%d", ae.ErrorCode(), re.HTTPStatusCode())
	}
	return "not an API error: " + err.Error()
}

func tags(n int) []types.Tag {
	out := make([]types.Tag, n)
	for i := range out {
		out[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	return out
}

// TestAssumeRoleAgainstSTSFake sends the same AssumeRole requests through
// the AWS SDK to moto and to test/ststest and compares what each answers.
// Where both validate, they must agree (the fake is checked against an
// implementation it did not write); where moto accepts what STS refuses
// (its leniencies, listed here), the fake must still refuse as STS
// documents. A successful answer has the same shape from both.
func TestAssumeRoleAgainstSTSFake(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	fake := ststest.New(t)
	ctx := context.Background()
	client := func(url, key, secret string) *sts.Client {
		return sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url),
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
	}
	onMoto := client(m.URL, "AKIAIOSFODNN7EXAMPLE", "moto")
	onFake := client(fake.URL(), ststest.AccessKeyID, ststest.SecretAccessKey)

	const role = "arn:aws:iam::123456789012:role/ci/web-deploy"
	valid := func() *sts.AssumeRoleInput {
		return &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("gh-acme.web-42-1"),
			DurationSeconds: aws.Int32(900), SourceIdentity: aws.String("gh-1339936803"), ExternalId: aws.String("acme-ci"),
			Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`),
			Tags:   tags(3), TransitiveTagKeys: []string{"k0"}}
	}
	for _, tt := range []struct {
		name     string
		change   func(*sts.AssumeRoleInput)
		fake     string // STS's code, as the fake answers
		moto     string // moto's; differs where moto is lenient
		lenience bool
	}{
		{"valid", func(*sts.AssumeRoleInput) {}, "", "", false},
		{"session name over 64", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 65)) }, "ValidationError/400", "ValidationError/400", false},
		{"session name with a space", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("gh acme") }, "ValidationError/400", "", true},
		{"session name of 1", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a") }, "ValidationError/400", "", true},
		{"duration under 900", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError/400", "", true},
		{"duration over 43200", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }, "ValidationError/400", "", true},
		{"source identity with a slash", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("gh/1") }, "ValidationError/400", "", true},
		{"51 session tags", func(in *sts.AssumeRoleInput) { in.Tags = tags(51) }, "ValidationError/400", "", true},
		{"tag key aws:", func(in *sts.AssumeRoleInput) { in.Tags[0].Key = aws.String("aws:x") }, "ValidationError/400", "", true},
		{"external id of 1", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("a") }, "ValidationError/400", "", true},
		{"policy not JSON", func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{") }, "MalformedPolicyDocument/400", "", true},
		{"policy over 2048", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"x":"` + strings.Repeat("a", 2050) + `"}`) }, "ValidationError/400", "", true},
		{"not a role ARN", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::123456789012:user/x") }, "ValidationError/400", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(in)
			fo, ferr := onFake.AssumeRole(ctx, in)
			mo, merr := onMoto.AssumeRole(ctx, in)
			if code(ferr) != tt.fake {
				t.Errorf("ststest: %v, want code %q", ferr, tt.fake)
			}
			if code(merr) != tt.moto {
				t.Errorf("moto: %v, want code %q (a change in moto: update this table and docs)", merr, tt.moto)
			}
			if tt.lenience {
				t.Logf("moto accepts what STS refuses with %s", tt.fake)
			}
			if ferr != nil || merr != nil {
				return
			}
			for name, o := range map[string]*sts.AssumeRoleOutput{"ststest": fo, "moto": mo} {
				u, c := o.AssumedRoleUser, o.Credentials
				if u == nil || c == nil {
					t.Fatalf("%s: answer without AssumedRoleUser or Credentials", name)
				}
				if arn := aws.ToString(u.Arn); arn != "arn:aws:sts::123456789012:assumed-role/web-deploy/gh-acme.web-42-1" {
					t.Errorf("%s: AssumedRoleUser.Arn %s", name, arn)
				}
				if id := aws.ToString(u.AssumedRoleId); !strings.HasPrefix(id, "AROA") || !strings.HasSuffix(id, ":gh-acme.web-42-1") {
					t.Errorf("%s: AssumedRoleId %s", name, id)
				}
				if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" {
					t.Errorf("%s: credentials %s", name, aws.ToString(c.AccessKeyId))
				}
				if d := time.Until(aws.ToTime(c.Expiration)); d < 14*time.Minute || d > 16*time.Minute {
					t.Errorf("%s: expiration in %v, want 15m", name, d)
				}
			}
			// STS echoes the source identity; moto 5.2.1 does not keep it.
			if got := aws.ToString(fo.SourceIdentity); got != "gh-1339936803" {
				t.Errorf("ststest: SourceIdentity %q", got)
			}
			if got := aws.ToString(mo.SourceIdentity); got != "" {
				t.Logf("moto now echoes SourceIdentity %q", got)
			}
		})
	}

	// An access key STS does not know, once moto enforces IAM: both answer
	// InvalidClientTokenId with 403.
	m.EnforceIAM(t)
	unknown := func(url string) error {
		_, err := client(url, "AKIAUNKNOWNKEY000000", "x").AssumeRole(ctx, valid())
		return err
	}
	if f, mo := code(unknown(fake.URL())), code(unknown(m.URL)); f != "InvalidClientTokenId/403" || mo != f {
		t.Errorf("an unknown access key: ststest %s, moto %s, want InvalidClientTokenId/403 from both", f, mo)
	}
}

// TestWithEnv: moto reads its settings from the environment Start gives
// it: with INITIAL_NO_AUTH_ACTION_COUNT=0 it enforces IAM from the first
// request, so a key it never issued is refused at once.
func TestWithEnv(t *testing.T) {
	t.Parallel()
	m := moto.Start(t, moto.WithEnv("INITIAL_NO_AUTH_ACTION_COUNT=0"))
	c := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWNKEY000000", "x", "")})
	_, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if got := code(err); got != "InvalidClientTokenId/403" {
		t.Fatalf("GetCallerIdentity with an unknown key: %v, want InvalidClientTokenId/403", err)
	}
}
