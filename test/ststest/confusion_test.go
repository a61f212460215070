package ststest_test

import (
	"errors"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/oidc-bridge/oidc-bridge/providers/jwt/jwttest"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// craftedSubjects are subs a generic issuer's token may carry to pass for
// the bridge's AWS assertions: the old format and the new one.
var craftedSubjects = []string{
	"repo:x:mapping:deploy", "repo:acme/web:mapping:deploy",
	"oidc-bridge:aws:mapping:deploy", "oidc-bridge:mapping:deploy",
}

// TestJWTProviderTokenRefusedByWebIdentity: a token of the bridge's jwt
// provider cannot be used at AssumeRoleWithWebIdentity for a role whose
// trust policy is the documented one (StringEquals on the whole subject),
// whatever sub the pipeline's token had: the jwt provider will not sign for
// sts.amazonaws.com, and even where an IAM OIDC provider and the policy
// also accepted its internal audience, its sub is the jwt provider's.
func TestJWTProviderTokenRefusedByWebIdentity(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	const internal = "https://internal.example"
	s := ststest.New(t)
	s.TrustOIDCProvider(signer.Issuer(), stsAudience, internal)
	s.TrustRole(roleARN, ststest.TrustPolicy{Issuer: signer.Issuer(), Audience: internal, Subject: "oidc-bridge:aws:mapping:deploy"})
	c := anonymousClient(t, s)
	for _, sub := range craftedSubjects {
		for _, aud := range []string{stsAudience, "STS.amazonaws.com", "sts.amazonaws.com.cn"} {
			if _, err := jwttest.Mint(t, signer, aud, sub); err == nil {
				t.Errorf("the jwt provider signed a token for %s", aud)
			}
		}
		tok, err := jwttest.Mint(t, signer, internal, sub)
		if err != nil {
			t.Fatal(err)
		}
		_, err = assumeWeb(t, c, tok)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Errorf("sub %q: AssumeRoleWithWebIdentity %v, want AccessDenied", sub, err)
		}
	}
	for _, call := range s.Calls() {
		if call.WebIdentitySubject != "oidc-bridge:jwt:mapping:deploy" || call.IssuedAccessKeyID != "" {
			t.Errorf("STS saw sub %q, issued %q", call.WebIdentitySubject, call.IssuedAccessKeyID)
		}
	}
	// The trust policy admits the subject it names: the refusal above is
	// the subject's doing.
	ok := webToken(t, signer, "", map[string]any{"sub": "oidc-bridge:aws:mapping:deploy", "aud": internal})
	if _, err := assumeWeb(t, c, ok); err != nil {
		t.Fatalf("the trusted subject: %v", err)
	}
}
