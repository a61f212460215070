package ciclient

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAWSConfigProfile(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	resp := awsAnswer(exp)
	creds, _ := json.Marshal(map[string]any{"access_key_id": "ASIAEXAMPLE", "secret_access_key": "s3cr3t+/=",
		"session_token": "FwoGZXIvYXdzEJr//////////wEaD", "expiration": exp, "region": "eu-west-1"})
	resp.Credentials = creds
	got, err := awsConfigProfile("web.prod", resp)
	want := "[profile web.prod]\n# expires 2026-11-26T18:00:00Z, issuance 0193b9e2\nregion = eu-west-1\naws_access_key_id = ASIAEXAMPLE\n" +
		"aws_secret_access_key = s3cr3t+/=\naws_session_token = FwoGZXIvYXdzEJr//////////wEaD\n"
	if err != nil || got != want {
		t.Fatalf("profile:\n%s\nwant\n%s (%v)", got, want, err)
	}
	if got, _ := awsConfigProfile("default", resp); !strings.HasPrefix(got, "[default]\n") {
		t.Errorf("the default profile: %q", got)
	}
	// A value that could add a line or a section is refused, not written.
	for _, bad := range []string{"tok\n[profile admin]", "tok en", "tok#x"} {
		creds, _ := json.Marshal(map[string]any{"access_key_id": "ASIAEXAMPLE", "secret_access_key": "s", "session_token": bad})
		resp.Credentials = creds
		if _, err := awsConfigProfile("web", resp); err == nil || !strings.Contains(err.Error(), "aws_session_token") {
			t.Errorf("session token %q: %v", bad, err)
		}
	}
}

func TestAWSConfigOptions(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "https://gh.example/t", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "r", "JOB": "tok"}
	base := Options{BridgeURL: "https://bridge.example.com", Format: FormatAWSConfig, NoCache: true}
	for _, tc := range []struct {
		name string
		o    func(o *Options)
		want string // "" when Load accepts it
	}{
		{"two mappings", func(o *Options) { o.Mappings = []string{"a", "b"} }, ""},
		{"no mapping", func(*Options) {}, "needs --mapping"},
		{"not a profile name", func(o *Options) { o.Mappings = []string{"a b"} }, "cannot name an AWS profile"},
		{"twice", func(o *Options) { o.Mappings = []string{"a", "a"} }, "given twice"},
		{"several without aws-config", func(o *Options) { o.Format = FormatJSON; o.Mappings = []string{"a", "b"} }, "need --format aws-config"},
		{"--output without aws-config", func(o *Options) { o.Format = FormatJSON; o.Output = "f" }, "--output is for"},
		{"static source, two mappings", func(o *Options) { o.Mappings = []string{"a", "b"}; o.TokenEnv = "JOB" }, "fresh token for each exchange"},
		{"static source, one mapping", func(o *Options) { o.Mappings = []string{"a"}; o.TokenEnv = "JOB" }, ""},
	} {
		o := base
		tc.o(&o)
		c, err := Load(env, o)
		var ue *UsageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && c.req.Mapping != o.Mappings[0]:
			t.Errorf("%s: the first request asks for %q", tc.name, c.req.Mapping)
		case tc.want != "" && (err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a usage error saying %q", tc.name, err, tc.want)
		}
	}
}
