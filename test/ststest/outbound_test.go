package ststest_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// TestGetWebIdentityToken: the real SDK's GetWebIdentityToken reaches the
// minter with what it asked for (signed by the caller's key, in its
// region), and gets the token and its expiration back; STS's limits are
// refused before the minter, and an account without outbound federation
// answers as AWS's does.
func TestGetWebIdentityToken(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex // the minter runs on the server's goroutines
		got []ststest.OutboundRequest
	)
	s := ststest.New(t, ststest.WithOutboundIdentity(func(r ststest.OutboundRequest) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
		return "header.payload.signature", nil
	}))
	c := defaultClient(t, s)
	before := time.Now().Truncate(time.Second)
	out, err := c.GetWebIdentityToken(t.Context(), &sts.GetWebIdentityTokenInput{
		Audience: []string{"https://bridge.example.com"}, SigningAlgorithm: aws.String("RS256"),
		DurationSeconds: aws.Int32(120), Tags: []types.Tag{{Key: aws.String("pipeline"), Value: aws.String("release")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.WebIdentityToken) != "header.payload.signature" {
		t.Errorf("token %q", aws.ToString(out.WebIdentityToken))
	}
	if exp := aws.ToTime(out.Expiration); exp.Before(before.Add(120*time.Second)) || exp.After(time.Now().Add(121*time.Second)) {
		t.Errorf("expiration %v, want 120 s from now", exp)
	}
	want := []ststest.OutboundRequest{{AccessKeyID: ststest.AccessKeyID, Region: "eu-west-1", Audience: []string{"https://bridge.example.com"},
		SigningAlgorithm: "RS256", Duration: 120 * time.Second, Tags: map[string]string{"pipeline": "release"}}}
	mu.Lock()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("minter saw (-want +got):\n%s", d)
	}

	mu.Unlock()
	// The default duration is 300 s.
	if _, err := c.GetWebIdentityToken(t.Context(), &sts.GetWebIdentityTokenInput{
		Audience: []string{"a", "b"}, SigningAlgorithm: aws.String("ES384")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if r := got[len(got)-1]; r.Duration != 300*time.Second || len(r.Audience) != 2 || r.SigningAlgorithm != "ES384" {
		t.Errorf("second request %+v", r)
	}
	mu.Unlock()

	for name, in := range map[string]*sts.GetWebIdentityTokenInput{
		"algorithm": {Audience: []string{"a"}, SigningAlgorithm: aws.String("HS256")},
		"duration":  {Audience: []string{"a"}, SigningAlgorithm: aws.String("RS256"), DurationSeconds: aws.Int32(3601)},
		"audiences": {Audience: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, SigningAlgorithm: aws.String("RS256")},
	} {
		if _, err := c.GetWebIdentityToken(t.Context(), in); err == nil || apiCode(t, err) != "ValidationError" {
			t.Errorf("%s: %v, want ValidationError", name, err)
		}
	}
	mu.Lock()
	if len(got) != 2 {
		t.Errorf("the minter saw %d requests, want the 2 valid ones", len(got))
	}
	mu.Unlock()
	// A wrong secret never reaches the minter.
	bad := client(t, s, ststest.AccessKeyID, "wrong", "")
	if _, err := bad.GetWebIdentityToken(t.Context(), &sts.GetWebIdentityTokenInput{Audience: []string{"a"}, SigningAlgorithm: aws.String("RS256")}); err == nil || apiCode(t, err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}

	off := defaultClient(t, ststest.New(t))
	_, err = off.GetWebIdentityToken(t.Context(), &sts.GetWebIdentityTokenInput{Audience: []string{"a"}, SigningAlgorithm: aws.String("RS256")})
	var disabled *types.OutboundWebIdentityFederationDisabledException
	if !errors.As(err, &disabled) {
		t.Errorf("without outbound federation: %v, want OutboundWebIdentityFederationDisabledException", err)
	}
}
