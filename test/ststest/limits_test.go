package ststest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// TestLimits sends, through the real SDK, what AWS refuses by its
// documented limits (see validateAssumeRole's sources) and what it
// accepts at the edges.
func TestLimits(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	c := defaultClient(t, s)
	policy := func(resource string) *string {
		return aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + resource + `"}}`)
	}
	const policyBase = 106 // characters of policy("") as written above
	bigTags := func(n int) []types.Tag {
		var out []types.Tag
		for i := range n {
			out = append(out, tag(fmt.Sprintf("key%03d", i), strings.Repeat("v", 250)))
		}
		return out
	}
	tests := []struct {
		name     string
		mod      func(*sts.AssumeRoleInput)
		wantCode string
	}{
		{"source identity 2", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("gh") }, ""},
		{"source identity 1", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("g") }, "ValidationError"},
		{"source identity 64", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String(strings.Repeat("s", 64)) }, ""},
		{"source identity 65", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String(strings.Repeat("s", 65)) }, "ValidationError"},
		{"external id 2", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("ab") }, ""},
		{"external id 1", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("a") }, "ValidationError"},
		{"external id 1224", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String(strings.Repeat("e", 1224)) }, ""},
		{"external id 1225", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String(strings.Repeat("e", 1225)) }, "ValidationError"},
		{"external id every allowed character", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("aZ09_+=,.@:/-") }, ""},
		{"policy of 2048 characters", func(in *sts.AssumeRoleInput) { in.Policy = policy(strings.Repeat("b", 2048-policyBase)) }, ""},
		{"policy of 2049 characters", func(in *sts.AssumeRoleInput) { in.Policy = policy(strings.Repeat("b", 2049-policyBase)) }, "ValidationError"},
		{"policy counted in characters", func(in *sts.AssumeRoleInput) { in.Policy = policy(strings.Repeat("é", 2048-policyBase)) }, ""},
		{"policy outside Latin-1", func(in *sts.AssumeRoleInput) { in.Policy = policy("日本") }, "ValidationError"},
		{"policy without Statement", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"Version":"2012-10-17"}`) }, "MalformedPolicyDocument"},
		{"tag key 128", func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{tag(strings.Repeat("k", 128), "v")} }, ""},
		{"tag key 129", func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{tag(strings.Repeat("k", 129), "v")} }, "ValidationError"},
		{"tag key empty", func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{tag("", "v")} }, "ValidationError"},
		{"tag key comma", func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{tag("a,b", "v")} }, "ValidationError"},
		{"tag value empty", func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{tag("k", "")} }, ""},
		{"transitive keys among the tags, without case", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{tag("team", "a"), tag("ref", "b")}
			in.TransitiveTagKeys = []string{"Team", "ref"}
		}, ""},
		{"transitive key not a tag", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{tag("team", "a")}
			in.TransitiveTagKeys = []string{"owner"}
		}, "InvalidParameterValue"},
		{"transitive key without tags", func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = []string{"team"} }, "InvalidParameterValue"},
		{"transitive key twice", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{tag("team", "a")}
			in.TransitiveTagKeys = []string{"team", "TEAM"}
		}, "InvalidParameterValue"},
		{"packed: a full policy and the bridge's tags", func(in *sts.AssumeRoleInput) {
			in.Policy = policy(strings.Repeat("b", 2048-policyBase))
			in.Tags = bigTags(7)
		}, ""},
		{"packed: tags too large", func(in *sts.AssumeRoleInput) { in.Tags = bigTags(17) }, "PackedPolicyTooLarge"},
		{"packed: policy and tags too large", func(in *sts.AssumeRoleInput) {
			in.Policy = policy(strings.Repeat("b", 2048-policyBase))
			in.Tags = bigTags(9)
		}, "PackedPolicyTooLarge"},
		{"duration 43200 without chaining", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43200) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("limits")}
			tt.mod(in)
			_, err := c.AssumeRole(t.Context(), in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("code = %q (%v), want %q", got, err, tt.wantCode)
			}
		})
	}
}

// A role session's AssumeRole is role chaining: AWS refuses
// DurationSeconds over 3600, with this message.
func TestRoleChainingCaller(t *testing.T) {
	t.Parallel()
	s := ststest.New(t, ststest.WithRoleChainingCaller())
	c := defaultClient(t, s)
	in := func(d int32) *sts.AssumeRoleInput {
		return &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("chained"), DurationSeconds: aws.Int32(d)}
	}
	if _, err := c.AssumeRole(t.Context(), in(3600)); err != nil {
		t.Fatal(err)
	}
	_, err := c.AssumeRole(t.Context(), in(3601))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" ||
		ae.ErrorMessage() != "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining." {
		t.Errorf("3601 s chained: %v", err)
	}
	s.SetRoleChainingCaller(false)
	if _, err := c.AssumeRole(t.Context(), in(43200)); err != nil {
		t.Errorf("43200 s unchained: %v", err)
	}
}
